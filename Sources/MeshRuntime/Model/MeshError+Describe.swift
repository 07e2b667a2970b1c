import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

extension MeshError {
    /// A sentence for people about any error the runtime meets: SQLite's result codes in words, with the
    /// library's own text kept in parentheses for whoever debugs it, and the file when one is known.
    ///
    /// ```swift
    /// catch { throw MeshError(.storage, "could not record run \(id): \(MeshError.describe(error, file: path))") }
    /// ```
    public static func describe(_ error: any Error, file: String? = nil) -> String {
        if let error = error as? MeshError { return error.message }
        let place = file.map { " (\($0))" } ?? ""
        if let error = error as? DatabaseError {
            let detail = error.message ?? "\(error.resultCode)"
            switch error.resultCode.primaryResultCode {
            case .SQLITE_FULL:
                return "the disk is full\(place): free space on it and run again"
            case .SQLITE_IOERR:
                return "the disk failed to read or write\(place) (\(detail)); check the disk and run again"
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return "another process kept the database locked for too long\(place); run again when it is done"
            case .SQLITE_READONLY:
                return "the database cannot be written\(place): check the file's owner and permissions"
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return "the database file is damaged or is not a SQLite database\(place) (\(detail))"
            case .SQLITE_CANTOPEN:
                return "the database cannot be opened\(place): its folder is missing or not accessible"
            case .SQLITE_INTERRUPT:
                return "the statement was stopped before it finished\(place)"
            case .SQLITE_CONSTRAINT:
                return "a row broke a rule of its table\(place): \(detail)"
            default:
                let statement = error.sql.map { " in `\($0.prefix(300))`" } ?? ""
                return "SQLite refused a statement\(place): \(detail)\(statement)"
            }
        }
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain {
            let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? file
            let reason: String
            switch (ns.domain, ns.code) {
            case (NSCocoaErrorDomain, CocoaError.fileWriteOutOfSpace.rawValue), (NSPOSIXErrorDomain, Int(ENOSPC)):
                reason = "the disk is full: free space on it and run again"
            case (NSCocoaErrorDomain, CocoaError.fileReadNoSuchFile.rawValue),
                (NSCocoaErrorDomain, CocoaError.fileNoSuchFile.rawValue):
                reason = "no such file"
            case (NSCocoaErrorDomain, CocoaError.fileReadNoPermission.rawValue),
                (NSCocoaErrorDomain, CocoaError.fileWriteNoPermission.rawValue):
                reason = "permission denied"
            default:
                reason = ns.localizedDescription
            }
            return path.map { "\($0): \(reason)" } ?? reason
        }
        return "\(error)"
    }

    /// A write to (or a read of) the run history that failed: names what could not be done and the runtime
    /// database, in words. An error that already says so is kept as it is.
    ///
    /// ```swift
    /// catch { throw MeshError.history("record step load of orders", error, file: store.path) }
    /// // the run history could not record step load of orders: the disk is full (HOME/runtime.sqlite): ...
    /// ```
    static func history(_ what: String, _ error: any Error, file: String) -> MeshError {
        if let error = error as? MeshError, error.message.hasPrefix("the run history could not") { return error }
        return MeshError(.storage, "the run history could not \(what): \(describe(error, file: file))")
    }

    /// Whether the error is the disk running out of space, whichever layer reported it.
    public static func isDiskFull(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError { return error.resultCode.primaryResultCode == .SQLITE_FULL }
        let ns = error as NSError
        return (ns.domain == NSCocoaErrorDomain && ns.code == CocoaError.fileWriteOutOfSpace.rawValue)
            || (ns.domain == NSPOSIXErrorDomain && ns.code == Int(ENOSPC))
    }
}
