import Foundation
import Testing

@testable import FeedFormats

/// The declared layouts against shared/spec/feeds.md: every feed, clean names, keys that exist.
struct LayoutTests {
    @Test func everyFeedOfTheSpecHasALayout() {
        #expect(
            FeedLayouts.all.map(\.feed) == [
                "products", "nppes", "ama", "crm_accounts", "alignment", "xponent", "claims", "formulary", "rebates",
                "crm_calls", "email_events", "web_sessions", "media", "partd",
            ])
        #expect(FeedLayouts.layout(for: "claims")?.format == .delimited(delimiter: UInt8(ascii: "|"), quoted: false))
        #expect(FeedLayouts.layout(for: "nppes")?.format == .delimited(delimiter: UInt8(ascii: ","), quoted: true))
        #expect(FeedLayouts.layout(for: "crm_calls")?.format == .jsonLines)
        #expect(FeedLayouts.layout(for: "nope") == nil)
    }

    @Test func tablesAreNamedAfterTheirFeedAndColumnsAreUniqueSnakeCase() {
        for layout in FeedLayouts.all {
            for table in layout.tables {
                #expect(table.name == layout.feed || table.name.hasPrefix(layout.feed + "_"), "\(table.name)")
                let names = table.outputColumns.map(\.name)
                #expect(Set(names).count == names.count, "\(table.name)")
                for name in names {
                    #expect(name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(table.name).\(name)")
                }
                #expect(!table.key.isEmpty && table.key.allSatisfy(names.contains), "\(table.name) key \(table.key)")
                let sources = table.columns.map { $0.source.lowercased() }
                #expect(Set(sources).count == sources.count, "\(table.name)")
            }
        }
    }

    @Test func keysFollowTheSpec() {
        func key(_ table: String) -> [String] {
            FeedLayouts.all.flatMap(\.tables).first { $0.name == table }?.key ?? []
        }
        #expect(key("xponent") == ["week_ending", "prescriber_id", "ndc11"])
        #expect(key("media") == ["week_ending", "dma_code", "channel", "campaign_id"])
        #expect(key("partd") == ["data_year", "prscrbr_npi", "brnd_name", "gnrc_name"])
        #expect(key("formulary_coverage") == ["as_of", "plan_id", "ndc11"])
        #expect(key("claims") == ["claim_id"])
        #expect(FeedLayouts.layout(for: "email_events")?.latestWins == false)
    }

    @Test func theXponentTableIsWhatIngestInserts() {
        let xponent = FeedLayouts.layout(for: "xponent")!.tables[0]
        #expect(
            xponent.outputColumns.map { "\($0.name) \($0.type)" } == [
                "prescriber_id TEXT", "npi TEXT", "me_number TEXT", "ndc11 TEXT", "week_ending TEXT", "nrx REAL",
                "trx REAL", "nqty REAL", "tqty REAL", "npi_valid INTEGER", "trx_lt_nrx INTEGER",
            ])
    }
}
