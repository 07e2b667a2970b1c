import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Exit codes of shared/spec/interfaces.md: 0 success, 1 the work ran and something failed, 2 bad usage or input.
exit(await CommandLineEntry.main())
