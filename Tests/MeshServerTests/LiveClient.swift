import Foundation
import HTTPTypes
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// A response read off the socket: status, headers and the whole body.
struct TestResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer
    /// From connecting to the last byte, timed on the request's own thread (so a busy concurrency pool in
    /// the test process does not count).
    var duration: Duration = .zero
}

/// An HTTP/1.1 client for the tests: one TCP connection per request to the server on 127.0.0.1, the request
/// written exactly as given (hostile paths reach the server unchanged), the response read until the server
/// closes the connection (`Connection: close`). Each request runs on a thread of its own, so a slow answer
/// never blocks the concurrency pool the server's handlers run on.
struct LiveClient: Sendable {
    let port: Int?

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?)
        async throws -> TestResponse
    {
        var head = "\(method.rawValue) \(uri) HTTP/1.1\r\nHost: 127.0.0.1:\(port ?? 0)\r\nConnection: close\r\n"
        for field in headers { head += "\(field.name.rawName): \(field.value)\r\n" }
        let payload = body.map { Array($0.readableBytesView) } ?? []
        if body != nil || method == .post || method == .put { head += "Content-Length: \(payload.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + payload
        let port = self.port ?? 0
        let (raw, duration): ([UInt8], Duration) = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                let started = ContinuousClock.now
                do {
                    let raw = try Self.exchange(request, port: port)
                    continuation.resume(returning: (raw, ContinuousClock.now - started))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
        var response = try Self.parse(raw)
        response.duration = duration
        return response
    }

    /// Connects, writes the request, reads until the peer closes (at most 60 s without a byte).
    private static func exchange(_ request: [UInt8], port: Int) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw Failure(description: "connect to port \(port): \(String(cString: strerror(errno)))")
        }
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "recv: \(String(cString: strerror(errno)))")
            }
            response += buffer[0..<n]
        }
        return response
    }

    /// Status line, headers, then the body (de-chunked when `Transfer-Encoding: chunked`).
    private static func parse(_ raw: [UInt8]) throws -> TestResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
            throw Failure(description: "no complete response head in \(raw.count) bytes")
        }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let code = Int(statusParts[1]) else {
            throw Failure(description: "bad status line: \(lines[0])")
        }
        var headers = HTTPFields()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else {
                continue
            }
            headers.append(
                HTTPField(name: name, value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(raw[(end + 4)...])
        if headers[.transferEncoding]?.lowercased().contains("chunked") == true {
            var decoded: [UInt8] = []
            var at = 0
            while let lineEnd = body[at...].indices.first(where: { body[$0...].starts(with: [13, 10]) }),
                let size = Int(
                    String(decoding: body[at..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16),
                size > 0, lineEnd + 2 + size <= body.count
            {
                decoded += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
                at = lineEnd + 2 + size + 2
                if at > body.count { break }
            }
            body = decoded
        }
        return TestResponse(
            status: HTTPResponse.Status(code: code), headers: headers, body: ByteBuffer(bytes: body))
    }
}
