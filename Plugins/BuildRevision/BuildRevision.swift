import Foundation
import PackagePlugin

/// Generates `BuildRevision.swift` for the target it is applied to, holding the git revision the
/// package is built from (`git describe --always --dirty`), so `dv --version` can name it.
///
/// A prebuild command runs before every build; it rewrites the file only when the revision
/// changed, so an unchanged tree compiles nothing new. Outside a git checkout (a source archive)
/// the revision is "unknown".
@main
struct BuildRevision: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    let outputs = context.pluginWorkDirectoryURL.appending(path: "generated")
    let file = outputs.appending(path: "BuildRevision.swift").path(percentEncoded: false)
    let package = context.package.directoryURL.path(percentEncoded: false)
    // $1: the package directory, $2: the file to write, $3: its directory.
    let script = #"""
      revision=$(git -C "$1" describe --always --dirty --abbrev=12 2>/dev/null) || revision=unknown
      text="/// The git revision this build was made from (written by the BuildRevision plugin).
      package let buildRevision = \"$revision\""
      mkdir -p "$3"
      [ -f "$2" ] && [ "$(cat "$2")" = "$text" ] && exit 0
      printf '%s\n' "$text" > "$2.tmp" && mv "$2.tmp" "$2"
      """#
    return [
      .prebuildCommand(
        displayName: "Recording the git revision of \(target.name)",
        executable: URL(filePath: "/bin/sh"),
        arguments: ["-c", script, "build-revision", package, file, outputs.path(percentEncoded: false)],
        outputFilesDirectory: outputs)
    ]
  }
}
