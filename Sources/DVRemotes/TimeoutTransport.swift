import DVBasics
import Foundation

/// Sends every request with a remote's own timeouts (its `connect_timeout` and `read_timeout`
/// settings) through another transport. `read_timeout` is the stall timeout: seconds without a
/// byte moving before the attempt counts as failed and is retried.
struct TimeoutTransport: HTTPTransport {
  let base: HTTPTransport
  /// Seconds to connect; nil keeps each request's own.
  let connect: Double?
  /// Seconds without progress; nil keeps each request's own.
  let stall: Double?

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    var request = request
    if let connect { request.timeouts.connect = connect }
    if let stall { request.timeouts.stall = stall }
    return try base.send(request, into: sink, progress: progress)
  }
}

/// The timeout settings network remotes accept.
public enum RemoteTimeouts {
  /// `connect_timeout` and `read_timeout`, in seconds (DVC's names for them).
  public static let settingKeys: Set<String> = ["connect_timeout", "read_timeout"]

  /// The seconds a timeout setting holds; throws for anything but a number of at least 1 (libcurl
  /// measures stalls in whole seconds) and at most a day.
  public static func seconds(_ value: String, remote: String, key: String) throws -> Double {
    guard let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds >= 1,
      seconds <= 86_400
    else {
      throw RemoteError.invalidSetting(
        remote: remote, key: key, reason: "is '\(value)'; give a number of seconds from 1 to 86400")
    }
    return seconds
  }

  /// `transport`, or one that applies the remote's timeout settings to every request.
  static func transport(_ transport: HTTPTransport, settings: RemoteSettings) throws -> HTTPTransport {
    let connect = try settings.options["connect_timeout"].map {
      try seconds($0, remote: settings.name, key: "connect_timeout")
    }
    let stall = try settings.options["read_timeout"].map {
      try seconds($0, remote: settings.name, key: "read_timeout")
    }
    guard connect != nil || stall != nil else { return transport }
    return TimeoutTransport(base: transport, connect: connect, stall: stall)
  }
}
