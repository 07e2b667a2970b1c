import MeshRuntime
import Testing

@testable import pharma_mesh

/// The command line words the runtime's typed refusals with its own commands.
struct RefusalWordingTests {
    @Test func aRefusalNamesThePharmaMeshCommandsThatFixIt() {
        let refusal = KitchenRefusal.otherProgram(
            "physician-mart", kitchen: "k", parent: "production", built: "abc", parentWouldBuild: "def")
        #expect(
            refusal.sentence(ProductIdentity.pharmaMesh.command)
                == "physician-mart: the kitchen built it with code abc, and production would build def even with the kitchen's SQL: the kitchen's build is of another program; rebuild it with this one (`pharma-mesh kitchen run k --force`)"
        )
        #expect(ProductIdentity.pharmaMesh.name == "pharma-mesh")
    }
}
