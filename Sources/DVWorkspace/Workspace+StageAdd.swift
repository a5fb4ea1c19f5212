import DVBasics
import DVPipeline

extension Workspace {
  /// Appends a stage to stages.yaml (validated as a whole before it is written, atomically).
  public func addStage(_ stage: NewStage, replace: Bool) throws {
    let lock = try lockForWriting()
    defer { lock.release() }
    let path = root + "/" + PipelineLoader.fileName
    let text = try StageFile.appending(
      stage, to: try FileSystem.readTextIfPresent(path), replace: replace, workspaceRoot: root)
    try FileSystem.writeAtomically(text, to: path)
  }
}
