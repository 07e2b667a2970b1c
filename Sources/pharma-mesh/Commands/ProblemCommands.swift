import ArgumentParser
import Foundation
import MeshRuntime

/// `problem report|list|close`: consumers report problems against a domain; its owner closes them.
struct ProblemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "problem", abstract: "Report, list and close problems against domains.",
        subcommands: [Report.self, List.self, Close.self])

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Report a problem against a domain.")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The domain.") var domain: DomainID
        @Option(help: "What is wrong, in a line.") var title: String
        @Option(help: "More: where you saw it, a query that shows it.") var detail = ""
        @Option(help: "Who reports it. Default: $USER.") var by: String?

        func run() async throws {
            let mesh = try self.mesh.open(access: .read)
            try mesh.requireDomain(domain)
            let problem = try await mesh.reportProblem(
                domain: domain, title: title, detail: detail,
                by: by ?? ProcessInfo.processInfo.environment["USER"] ?? "cli")
            let owner = mesh.registry[domain]!.owner
            print(
                "problem #\(problem.id ?? 0) reported against \(domain); its owner is \(owner.team) (\(owner.contact))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Problems, open ones first.")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "Only this domain's.") var domain: DomainID?
        @Flag(help: "Closed ones too.") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let mesh = try self.mesh.open(access: .read)
            if let domain { try mesh.requireDomain(domain) }
            let problems = try mesh.store.problems(of: domain, includeClosed: all)
            if json {
                print(try JSON.string(problems))
                return
            }
            guard !problems.isEmpty else {
                print(all ? "no problems reported" : "no open problems")
                return
            }
            print(
                Console.table(
                    ["#", "DOMAIN", "TITLE", "BY", "REPORTED", "STATUS", "FIXED BY"],
                    problems.map {
                        [
                            "\($0.id ?? 0)", $0.domain.rawValue, $0.title, $0.reportedBy, Console.date($0.reportedAt),
                            $0.status + ($0.closedBy.map { " (\($0))" } ?? ""), $0.fixedByRun?.rawValue ?? "",
                        ]
                    }))
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close a problem, naming the run that fixed it.")
        @OptionGroup var mesh: MeshOptions
        @Argument(help: "The problem's number.") var id: Int64
        @Option(help: "What was done.") var resolution = ""
        @Option(help: "The run that fixed it.") var fixedBy: String?
        @Option(help: "Who closes it. Default: $USER.") var by: String?

        func run() async throws {
            let mesh = try self.mesh.open(access: .read)
            let problem = try await mesh.closeProblem(
                id, by: by ?? ProcessInfo.processInfo.environment["USER"] ?? "cli", resolution: resolution,
                fixedBy: fixedBy.map(RunID.init))
            print(
                "problem #\(id) on \(problem.domain) closed" + (problem.fixedByRun.map { ", fixed by run \($0)" } ?? "")
            )
        }
    }
}
