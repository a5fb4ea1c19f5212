// swift-tools-version:6.1
// dv: content-addressed data versioning and pipelines. Targets depend downward only (docs/architecture.md §11).
import PackageDescription

// Release builds link the Swift runtime and Foundation statically: startup drops from ~12 ms to
// ~6 ms, which is most of the time of `dv status` and of every git hook. Modules that import
// Foundation compile against the static SDK so that they name its libraries for the linker.
let staticRuntime: [SwiftSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]
let staticLinking: [LinkerSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]

// Each target's README.md says what lives there; it is documentation, not a resource.
let readme = ["README.md"]

let package = Package(
  name: "dv",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "dv", targets: ["dv"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
  ],
  targets: [
    // libcrypto (OpenSSL) for SHA-256 through EVP.
    .systemLibrary(
      name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
      providers: [.apt(["libssl-dev"])]),
    // zlib, for gzip-compressed inputs and outputs of the data plugins.
    .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // libcurl and typed shims for its variadic calls.
    .target(name: "CCurl", path: "Sources/CCurl", exclude: readme, linkerSettings: [.linkedLibrary("curl")]),
    // Linux calls Swift cannot make directly (variadic ioctl for reflinks, syncfs, copy_file_range).
    .target(name: "CDVSystem", path: "Sources/CDVSystem", exclude: readme),
    // Workspace-confined paths, atomic writes, file copy/link, flock, diagnostics, progress protocol.
    .target(name: "DVBasics", dependencies: ["CDVSystem"], exclude: readme, swiftSettings: staticRuntime),
    // Hashing, object ids, tree manifests, the local cache, the stat cache, checkout links, gc, fsck.
    .target(
      name: "DVStorage",
      dependencies: ["DVBasics", "COpenSSL", .product(name: "GRDB", package: "GRDB.swift")],
      exclude: readme,
      swiftSettings: staticRuntime),
    // stages.yaml: model, loader with file:line:column errors, templating, the stage graph.
    .target(
      name: "DVPipeline",
      dependencies: ["DVBasics", "DVStorage", .product(name: "Yams", package: "Yams")],
      exclude: readme,
      swiftSettings: staticRuntime),
    // The HTTP transport over libcurl with its retry policy; the remotes issue adds S3, GCS, local.
    .target(
      name: "DVRemotes", dependencies: ["DVBasics", "DVStorage", "CCurl", "COpenSSL"], exclude: readme,
      swiftSettings: staticRuntime),
    // Built-in data plugins (download, validate, dedup, split, profile) and their table streams.
    .target(
      name: "DVPlugins",
      dependencies: [
        "DVBasics", "DVStorage", "DVPipeline", "DVRemotes", "CZlib", "COpenSSL",
        .product(name: "Yams", package: "Yams"),
      ],
      exclude: readme,
      swiftSettings: staticRuntime),
    // The lineage ledger (.pipeline/lineage.db): schema, migrations, recording, queries, exporters.
    .target(
      name: "DVLineage",
      dependencies: ["DVBasics", "DVStorage", .product(name: "GRDB", package: "GRDB.swift")],
      exclude: readme,
      swiftSettings: staticRuntime),
    // Stage executors beyond this machine: Slurm (sbatch/squeue/scancel), behind StageExecutor.
    .target(
      name: "DVCluster", dependencies: ["DVBasics", "DVStorage", "DVPipeline", "CDVSystem"], exclude: readme,
      swiftSettings: staticRuntime),
    // The façade: one type per workspace operation, config, pointer files, the writer lock.
    .target(
      name: "DVWorkspace",
      dependencies: [
        "DVBasics", "DVStorage", "DVPipeline", "DVPlugins", "DVLineage", "DVRemotes", "DVCluster",
        .product(name: "Yams", package: "Yams"),
      ],
      exclude: readme,
      swiftSettings: staticRuntime),
    // swift-argument-parser commands: parse, call one DVWorkspace operation, render.
    .target(
      name: "DVCommands",
      dependencies: [
        "DVBasics", "DVPipeline", "DVPlugins", "DVRemotes", "DVWorkspace",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      exclude: readme,
      swiftSettings: staticRuntime,
      plugins: ["BuildRevision"]),
    // The executable: Entrypoint.swift only.
    .executableTarget(
      name: "dv", dependencies: ["DVCommands"], exclude: readme, swiftSettings: staticRuntime, linkerSettings: staticLinking),

    // Writes the git revision being built into DVCommands, for `dv --version`.
    .plugin(name: "BuildRevision", capability: .buildTool()),

    // Seeded mutation of valid inputs and a watchdog, for the bad-input (fuzz) suites; tests only.
    .target(name: "FuzzSupport", path: "Tests/FuzzSupport"),

    .testTarget(name: "DVBasicsTests", dependencies: ["DVBasics"]),
    .testTarget(name: "DVStorageTests", dependencies: ["DVStorage"]),
    .testTarget(name: "DVPipelineTests", dependencies: ["DVPipeline", "DVStorage", "FuzzSupport"]),
    .testTarget(name: "DVRemotesTests", dependencies: ["DVRemotes", "DVBasics", "FuzzSupport"]),
    .testTarget(name: "DVPluginsTests", dependencies: ["DVPlugins", "DVPipeline", "DVBasics"]),
    .testTarget(name: "DVLineageTests", dependencies: ["DVLineage", "DVBasics", "FuzzSupport"]),
    .testTarget(name: "DVWorkspaceTests", dependencies: ["DVWorkspace", "DVPipeline", "DVRemotes", "DVStorage", "FuzzSupport"]),
    .testTarget(name: "EndToEndTests", dependencies: ["DVBasics", "DVStorage", "FuzzSupport"]),
  ],
  swiftLanguageModes: [.v5]
)
