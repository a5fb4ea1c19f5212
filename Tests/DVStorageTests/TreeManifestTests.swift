import XCTest

@testable import DVStorage

final class TreeManifestTests: XCTestCase {
  let h1 = SHA256Hasher.hash(Array("one".utf8))
  let h2 = SHA256Hasher.hash(Array("two".utf8))

  func testCanonicalFormIsSortedByBytesWithoutWhitespace() {
    let manifest = TreeManifest(entries: [
      TreeEntry(path: "a/b", hash: h1, size: 3, exec: false),
      TreeEntry(path: "a.txt", hash: h2, size: 3, exec: true),
    ])
    let json = String(decoding: manifest.canonicalJSON(), as: UTF8.self)
    XCTAssertEqual(
      json,
      #"[{"path":"a.txt","hash":"\#(h2)","size":3,"exec":true},{"path":"a/b","hash":"\#(h1)","size":3,"exec":false}]"#)
    XCTAssertEqual(manifest.objectID(), SHA256Hasher.hash(manifest.canonicalJSON()))
  }

  func testSameContentInAnyOrderHasTheSameHash() {
    let a = TreeManifest(entries: [
      TreeEntry(path: "x", hash: h1, size: 3, exec: false), TreeEntry(path: "y", hash: h2, size: 3, exec: false),
    ])
    let b = TreeManifest(entries: [
      TreeEntry(path: "y", hash: h2, size: 3, exec: false), TreeEntry(path: "x", hash: h1, size: 3, exec: false),
    ])
    XCTAssertEqual(a.objectID(), b.objectID())
  }

  func testEscapesAndRoundTrips() throws {
    let manifest = TreeManifest(entries: [
      TreeEntry(path: "quote\"back\\slash", hash: h1, size: 1, exec: false),
      TreeEntry(path: "new\nline\u{1}", hash: h2, size: 2, exec: false),
      TreeEntry(path: "ünïcödé/名前", hash: h1, size: 0, exec: true),
    ])
    let json = manifest.canonicalJSON()
    XCTAssertTrue(String(decoding: json, as: UTF8.self).contains(#""new\nline\u0001""#))
    XCTAssertEqual(try TreeManifest.parse(json, id: manifest.objectID()), manifest)
  }

  func testParseRejectsCorruptOrUnsafeManifests() {
    let id = h1
    for text in [
      "", "{}", "[", #"[{"path":"a","hash":"sha256:00","size":1,"exec":false}]"#,
      #"[{"path":"../escape","hash":"\#(h1)","size":1,"exec":false}]"#,
      #"[{"path":"/abs","hash":"\#(h1)","size":1,"exec":false}]"#,
      #"[{"path":"a","hash":"\#(h1)","size":-1,"exec":false}]"#,
      #"[{"path":"a","hash":"\#(h1)","size":1,"exec":false,"extra":1}]"#,
      #"[{"path":"a","hash":"\#(h1)","size":1,"exec":false}] trailing"#,
    ] {
      XCTAssertThrowsError(try TreeManifest.parse(Array(text.utf8), id: id), text)
    }
  }
}
