// A toy mesh in a process of its own, so that a test can kill a real build mid-way.
// Usage: mesh-fixture HOME    (builds domain `slow`, which waits 60 s inside its step)
import Foundation
import MeshRuntime
import MeshTestSupport

let home = URL(fileURLWithPath: CommandLine.arguments[1])
let mesh = try ToyMesh.mesh([ToyMesh.source("slow", source: "s", delay: .seconds(60))], home: home)
let summary = try await mesh.run(
    RunRequest(
        sourceStates: ["s": CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : "next"], force: ["slow"]))
print(summary.status.rawValue)
