import XCTest

@testable import DVStorage

final class IgnoreRulesTests: XCTestCase {
  func testGitignoreSyntax() {
    let rules = IgnoreRules(
      text: """
        # comment
        *.tmp
        /build/
        logs/
        data/**/cache
        !keep.tmp
        docs/*.md
        [Tt]humbs.db
        """)
    XCTAssertTrue(rules.isIgnored("a.tmp", isDirectory: false))
    XCTAssertTrue(rules.isIgnored("deep/er/a.tmp", isDirectory: false))
    XCTAssertFalse(rules.isIgnored("keep.tmp", isDirectory: false))
    XCTAssertTrue(rules.isIgnored("build", isDirectory: true))
    XCTAssertFalse(rules.isIgnored("build", isDirectory: false))
    XCTAssertFalse(rules.isIgnored("src/build", isDirectory: true))
    XCTAssertTrue(rules.isIgnored("src/logs", isDirectory: true))
    XCTAssertTrue(rules.isIgnored("data/cache", isDirectory: true))
    XCTAssertTrue(rules.isIgnored("data/a/b/cache", isDirectory: true))
    XCTAssertTrue(rules.isIgnored("docs/readme.md", isDirectory: false))
    XCTAssertFalse(rules.isIgnored("docs/sub/readme.md", isDirectory: false))
    XCTAssertTrue(rules.isIgnored("Thumbs.db", isDirectory: false))
    XCTAssertTrue(rules.isIgnored("thumbs.db", isDirectory: false))
    XCTAssertFalse(rules.isIgnored("data.csv", isDirectory: false))
  }

  func testDigestChangesWithTheRules() {
    XCTAssertNotEqual(IgnoreRules(text: "*.tmp").digest, IgnoreRules(text: "*.log").digest)
    XCTAssertTrue(IgnoreRules(text: "# only a comment\n\n").isEmpty)
  }
}
