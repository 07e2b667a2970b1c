import ArgumentParser
import Foundation
import MeshRuntime

/// The settings a mesh home keeps for itself: its variations and the steward's overrides, in `HOME/config/`.
///
/// They belong to the home, not to the folder a command runs from: the first command that writes to a new home
/// gives it its settings (the ones named with `--config`, else the repository's `config/` when the command runs
/// from a checkout, else none), and every later command reads the home's copies wherever it runs. Naming
/// `--config FILE` again replaces them.
enum HomeSettings {
    static let variations = "variations.json"
    static let stewardOverrides = "steward-overrides.csv"

    static func folder(of home: URL) -> URL { home.appendingPathComponent("config") }

    /// Gives a home its settings on its first write, or the ones named explicitly; prints what it copied.
    static func settle(home: URL, explicit: URL?) throws {
        let fm = FileManager.default
        let target = folder(of: home)
        let source: URL
        if let explicit {
            guard fm.fileExists(atPath: explicit.path) else {
                throw ValidationError(
                    "--config \(explicit.path): no such file. Name a variations file such as config/variations.json.")
            }
            source = explicit
        } else {
            // The home already has its settings (possibly none at all): nothing from here changes them.
            guard !fm.fileExists(atPath: target.path) else { return }
            let checkout = URL(fileURLWithPath: "config/\(variations)").standardizedFileURL
            try fm.createDirectory(at: target, withIntermediateDirectories: true)
            guard fm.fileExists(atPath: checkout.path) else { return }
            source = checkout
        }
        try fm.createDirectory(at: target, withIntermediateDirectories: true)
        var copied: [String] = []
        let pairs = [
            (source, target.appendingPathComponent(variations)),
            (
                source.deletingLastPathComponent().appendingPathComponent(stewardOverrides),
                target.appendingPathComponent(stewardOverrides)
            ),
        ]
        for (from, to) in pairs where fm.fileExists(atPath: from.path) && from.path != to.path {
            let bytes: Data
            do { bytes = try Data(contentsOf: from) } catch {
                throw ValidationError("cannot read the settings file \(from.path): \(MeshError.describe(error))")
            }
            if (try? Data(contentsOf: to)) == bytes { continue }
            do { try bytes.write(to: to, options: .atomic) } catch {
                throw ValidationError(
                    "cannot copy \(from.path) into the mesh's settings \(to.path): \(MeshError.describe(error))")
            }
            copied.append(from.path)
        }
        if !copied.isEmpty {
            Console.error(
                "settings: \(copied.joined(separator: " and ")) copied into \(target.path); "
                    + "this mesh reads its copies from now on, wherever it runs (--config FILE replaces them)")
        }
    }
}
