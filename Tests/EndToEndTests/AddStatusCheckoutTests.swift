import DVBasics
import Foundation
import XCTest

final class AddStatusCheckoutTests: DVTestCase {
  func testTheIssueSession() throws {
    try makeWorkspaceWithData(git: true)
    let add = try dv("add", "data/raw")
    XCTAssertEqual(add.code, 0, add.stderr)
    XCTAssertTrue(add.stdout.contains("added data/raw: 3 files"), add.stdout)
    XCTAssertTrue(add.stdout.contains("git add data/raw.dv data/.gitignore"), add.stdout)
    XCTAssertEqual(add.stderr, "", "no progress in a pipe")
    let pointer = read("data/raw.dv")!
    XCTAssertTrue(pointer.hasPrefix("version: 1\npath: raw\nhash: sha256:"), pointer)
    XCTAssertTrue(pointer.contains("kind: dir\nsize: 27\nfiles: 3\n"), pointer)
    XCTAssertEqual(read("data/.gitignore"), "/raw\n")
    XCTAssertEqual(cachedObjects().count, 4, "three files and the manifest")

    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(try dv("status", "--check").code, 0)

    try write("data/raw/a.csv", "id,v\n1,a\nx\n")
    try FileManager.default.removeItem(atPath: root + "/data/raw/b.csv")
    try write("data/raw/new.csv", "")
    let status = try dv("status")
    XCTAssertEqual(status.code, 0)
    XCTAssertEqual(
      status.stdout,
      """
      data/raw: modified (data/raw.dv)
          modified:  a.csv
          deleted:   b.csv
          added:     new.csv

      """)
    XCTAssertEqual(try dv("status", "--check").code, 1)
    let json = try JSONSerialization.jsonObject(with: Data(try dv("status", "--json").stdout.utf8)) as! [String: Any]
    XCTAssertEqual(json["clean"] as? Bool, false)
    let data = (json["data"] as! [[String: Any]])[0]
    XCTAssertEqual(data["path"] as? String, "data/raw")
    XCTAssertEqual(data["modified"] as? [String], ["a.csv"])
    XCTAssertEqual(data["deleted"] as? [String], ["b.csv"])
    XCTAssertEqual(data["added"] as? [String], ["new.csv"])

    let readd = try dv("add", "data/raw")
    XCTAssertEqual(readd.code, 0, readd.stderr)
    XCTAssertNotEqual(read("data/raw.dv"), pointer)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(read("data/.gitignore"), "/raw\n", "the entry is not duplicated")

    let before = try snapshot("data/raw")
    try FileSystem.removeTree(root + "/data/raw")
    XCTAssertTrue(try dv("status").stdout.contains("data/raw: deleted"))
    let checkout = try dv("checkout")
    XCTAssertEqual(checkout.code, 0, checkout.stderr)
    XCTAssertEqual(try snapshot("data/raw"), before, "byte for byte")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(try dv("checkout").stdout, "workspace is up to date\n")
  }

  /// Every file under a directory with its content.
  func snapshot(_ relative: String) throws -> [String: String] {
    var result: [String: String] = [:]
    let base = root + "/" + relative
    let enumerator = FileManager.default.enumerator(atPath: base)!
    while let path = enumerator.nextObject() as? String {
      var isDir: ObjCBool = false
      if FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDir), !isDir.boolValue {
        result[path] = read(relative + "/" + path)
      }
    }
    return result
  }

  func testAddingASingleFileAndCheckingItOut() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("model.bin", "weights")
    XCTAssertEqual(try dv("add", "model.bin").code, 0)
    XCTAssertTrue(read("model.bin.dv")!.contains("kind: file"))
    XCTAssertFalse(exists(".gitignore"), "no-scm writes no .gitignore")
    try write("model.bin", "other weights")
    XCTAssertEqual(try dv("status").stdout, "model.bin: modified (model.bin.dv)\n")
    assertFails(try dv("checkout"), code: 1, "refusing to overwrite or delete 'model.bin'")
    XCTAssertEqual(read("model.bin"), "other weights", "nothing was changed")
    XCTAssertEqual(try dv("checkout", "--force").code, 0)
    XCTAssertEqual(read("model.bin"), "weights")
  }

  func testCheckoutRefusesToDropUncachedFilesInsideADirectory() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try write("data/raw/notes.txt", "my notes, never added")
    try write("data/raw/a.csv", "edited, never added")
    let refused = try dv("checkout")
    assertFails(refused, code: 1, "refusing to overwrite or delete")
    XCTAssertTrue(refused.stderr.contains("data/raw/a.csv") && refused.stderr.contains("data/raw/notes.txt"))
    XCTAssertEqual(read("data/raw/notes.txt"), "my notes, never added")
    XCTAssertEqual(read("data/raw/a.csv"), "edited, never added")

    // Content that is in the cache may be replaced: an older version of b.csv.
    XCTAssertEqual(try dv("checkout", "--force").code, 0)
    XCTAssertFalse(exists("data/raw/notes.txt"))
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,a\n")
    try write("data/raw/b.csv", "id,v\n1,a\n")  // same content as a.csv, which is cached
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(read("data/raw/b.csv"), "id,v\n2,b\n")
  }

  func testCheckoutReportsMissingObjectsAndNamesDvPull() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/raw")
    assertFails(try dv("checkout"), code: 1, "run `dv pull`")
    XCTAssertTrue(try dv("status").stdout.contains("data/raw: deleted"))
  }

  func testStatusSaysNotInCacheWhenOnlyTheCacheLacksData() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    let status = try dv("status")
    XCTAssertEqual(status.stdout, "data/raw: not in cache (data/raw.dv)\n")
    XCTAssertEqual(try dv("status", "--check").code, 1)
  }

  func testDvignoreLeavesFilesOut() throws {
    try makeWorkspaceWithData()
    try write(".dvignore", "*.tmp\nscratch/\n")
    try write("data/raw/x.tmp", "temp")
    try write("data/raw/scratch/y.csv", "scratch")
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    XCTAssertTrue(read("data/raw.dv")!.contains("files: 3"))
    try write("data/raw/another.tmp", "more temp")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testHardlinkAndSymlinkCacheTypes() throws {
    for type in ["hardlink", "symlink"] {
      try? FileSystem.removeTree(root)
      try FileSystem.createDirectory(root)
      try makeWorkspaceWithData()
      try write(".pipeline/config.yaml", "version: 1\ncache:\n  type: [\(type), copy]\n")
      XCTAssertEqual(try dv("add", "data/raw").code, 0, type)
      let a = root + "/data/raw/a.csv"
      if type == "hardlink" {
        let attributes = try FileManager.default.attributesOfItem(atPath: a)
        XCTAssertEqual((attributes[.referenceCount] as! NSNumber).intValue, 2)
        XCTAssertEqual((attributes[.posixPermissions] as! NSNumber).intValue & 0o222, 0, "read-only")
      } else {
        XCTAssertTrue(try FileManager.default.destinationOfSymbolicLink(atPath: a).contains("/.pipeline/cache/sha256/"))
      }
      XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n", type)
      try FileSystem.removeTree(root + "/data/raw")
      XCTAssertEqual(try dv("checkout").code, 0, type)
      XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,a\n", type)
    }
  }
}

final class NoSCMTests: DVTestCase {
  func testAnEmptyDirectoryComesBackToo() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try FileSystem.createDirectory(root + "/data/empty")
    XCTAssertEqual(try dv("add", "data/empty").code, 0)
    XCTAssertTrue(read("data/empty.dv")!.contains("files: 0"))
    try FileSystem.removeTree(root + "/data/empty")
    XCTAssertTrue(try dv("status").stdout.contains("data/empty: deleted"))
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertTrue(FileSystem.isDirectory(root + "/data/empty"))
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testNoGitHintsWithoutGit() throws {
    try makeWorkspaceWithData()
    let add = try dv("add", "data/raw")
    XCTAssertEqual(add.code, 0)
    XCTAssertFalse(add.stdout.contains("git add"), add.stdout)
    XCTAssertFalse(exists("data/.gitignore"))
  }
}

final class StatCacheTests: DVTestCase {
  /// `status` hashes a changed file without caching it; the next `add` must still cache it.
  func testAFileSeenByStatusIsStillCachedByAdd() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try write("data/raw/a.csv", "seen by status first\n")
    XCTAssertTrue(try dv("status").stdout.contains("modified:  a.csv"))
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try FileSystem.removeTree(root + "/data/raw")
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(read("data/raw/a.csv"), "seen by status first\n")
  }

  /// After gc removed objects, `add` checks the cache again instead of trusting old flags.
  func testAddAfterGCRestoresObjectsGCRemoved() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let pointer = read("data/raw.dv")!
    try FileManager.default.removeItem(atPath: root + "/data/raw.dv")
    XCTAssertTrue(try dv("gc").stdout.hasPrefix("removed 4 objects"))
    try write("data/raw.dv", pointer)
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    XCTAssertEqual(cachedObjects().count, 4)
    XCTAssertEqual(try dv("fsck").code, 0)
  }
}
