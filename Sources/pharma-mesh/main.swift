import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// Exit codes of shared/spec/interfaces.md: 0 success, 1 the work ran and something failed, 2 bad usage or input.
// Line-buffered even when piped, so progress shows as it happens.
if let symbol = dlsym(nil, "stdout") {
    setvbuf(symbol.assumingMemoryBound(to: UnsafeMutablePointer<FILE>.self).pointee, nil, _IOLBF, 0)
}
exit(await CommandLineEntry.main())
