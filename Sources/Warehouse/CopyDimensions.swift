import GRDB
import MeshRuntime

/// Copies conformed dimensions from `conformed-dims` into the mart's own schema, so that each star is complete
/// in one schema: a dimension unchanged since the previous build read it is kept, a changed one is copied whole
/// (`StepContext.copyInputTable`, which also spares publication a read of its rows).
struct CopyDimensions: Step {
    var tables: [String]

    var kind: String { "swift" }
    var definition: String { "copy dimensions v2 " + tables.joined(separator: ",") }

    func run(in context: StepContext) async throws -> StepReport {
        let tables = self.tables
        return try await context.database.write { db in
            let before = db.totalChangesCount
            var kept: [String] = []
            for table in tables {
                // Copied whole with conformed-dims' own definition, or kept when the copy the build started
                // from already holds it: a changed dimension differs on most rows (dim_physician carries the
                // master version on each), so a fresh table costs less than deleting and inserting them one
                // by one, and its digest is conformed-dims'.
                if try !context.copyInputTable("conformed_dims.\(table)", in: db) { kept.append(table) }
            }
            return StepReport(
                rowsOut: db.totalChangesCount - before,
                message: kept.isEmpty ? nil : "unchanged since the previous version: \(kept.joined(separator: ", "))")
        }
    }
}

// What each copied dimension is built from, for table-level lineage: the conformed table of the same name.
extension CopyDimensions: DeclaresReads {
    var writes: [String] { tables }
    func reads(writing table: String) -> [String] { tables.contains(table) ? ["conformed_dims.\(table)"] : [] }
}
