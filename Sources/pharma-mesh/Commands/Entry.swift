import ArgumentParser
import Foundation
import MeshRuntime

/// The root command: `pharma-mesh SUBCOMMAND`.
struct PharmaMeshCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pharma-mesh",
        abstract: "A data mesh for pharma commercial analytics: raw feeds, mastered domains, marts and extracts.",
        subcommands: [
            GenerateCommand.self,
            RunCommand.self, StatusCommand.self, HistoryCommand.self, TestsCommand.self,
            LineageCommand.self, QueryCommand.self, DemoCommand.self, ServeCommand.self, TokenCommand.self,
            KitchenCommand.self, ProblemCommand.self, EngineCommand.self, BenchCommand.self,
        ])
}

/// Runs the root command and maps every outcome to the documented exit codes.
enum CommandLineEntry {
    static func main() async -> Int32 {
        var command: any ParsableCommand
        do {
            command = try PharmaMeshCommand.parseAsRoot()
        } catch {
            return argumentParserExit(error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch let error as MeshError {
            Console.error("error: \(error.message)")
            return error.code == .stepFailed || error.code == .syncViolation ? 1 : 2
        } catch let error as WorkFailed {
            Console.error(error.message)
            return 1
        } catch let error as ExitCode {
            return error.rawValue
        } catch let error as ValidationError {
            Console.error("error: \(error.message)")
            return 2
        } catch  where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // Help requests and argument errors raised while running come back through ArgumentParser.
            return argumentParserExit(error)
        } catch {
            // Anything else (a file the system refused, a database that could not be written) in words, never
            // as a library's bare text.
            Console.error("error: \(MeshError.describe(error))")
            return 2
        }
    }
}

extension CommandLineEntry {
    /// Prints what ArgumentParser has to say about an error; 0 for help, else 2 (bad usage).
    static func argumentParserExit(_ error: any Error) -> Int32 {
        let message = PharmaMeshCommand.fullMessage(for: error)
        if PharmaMeshCommand.exitCode(for: error) == .success {
            print(message)
            return 0
        }
        Console.error(message.isEmpty ? "error: \(error)" : message)
        return 2
    }
}

/// The work ran and something failed: exit code 1.
struct WorkFailed: Error {
    var message: String
}
