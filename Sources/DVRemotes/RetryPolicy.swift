import DVBasics
import Foundation

/// When and how long to wait before trying a request again: on connection errors, timeouts,
/// 408, 429 and 5xx (not 501 or 505, which will not change), with exponential backoff and
/// jitter, honouring the server's `Retry-After`. Other 4xx are final.
public struct RetryPolicy: Sendable {
  /// Attempts after the first.
  public var retries: Int
  /// The wait before the first retry, doubled for each further one.
  public var baseDelay: Double
  /// The longest computed wait, and the longest `Retry-After` obeyed.
  public var maxDelay: Double
  /// Waits; tests substitute one that records instead of sleeping.
  public var sleep: @Sendable (Double) -> Void
  /// A random number in 0...1, for the jitter.
  public var random: @Sendable () -> Double

  public init(
    retries: Int = 3, baseDelay: Double = 1, maxDelay: Double = 60,
    sleep: @escaping @Sendable (Double) -> Void = { seconds in
      if seconds > 0 { Thread.sleep(forTimeInterval: seconds) }
    },
    random: @escaping @Sendable () -> Double = { Double.random(in: 0...1) }
  ) {
    self.retries = max(0, retries)
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
    self.sleep = sleep
    self.random = random
  }

  /// No retries at all.
  public static let none = RetryPolicy(retries: 0)

  /// Whether a response with this status is worth another attempt.
  public static func isRetryable(status: Int) -> Bool {
    status == 408 || status == 429 || (500..<600).contains(status) && status != 501 && status != 505
  }

  /// The seconds a `Retry-After` header asks for (delay-seconds or an HTTP date); nil when absent
  /// or unreadable.
  public static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> Double? {
    guard let value = headers["Retry-After"]?.trimmingCharacters(in: .whitespaces) else { return nil }
    if let seconds = Double(value), seconds >= 0 { return seconds }
    guard let date = HTTPDate.parse(value) else { return nil }
    return max(0, date.timeIntervalSince(now))
  }

  /// The wait before retry number `retry` (1 for the first): the server's `Retry-After` when it
  /// gave one, else half of `baseDelay * 2^(retry-1)` plus a random share of the other half, so
  /// that many clients failing together do not retry together. Never above `maxDelay`.
  public func delay(beforeRetry retry: Int, retryAfter: Double?) -> Double {
    if let retryAfter { return min(retryAfter, maxDelay) }
    let ceiling = min(maxDelay, baseDelay * pow(2, Double(max(0, retry - 1))))
    return ceiling / 2 + ceiling / 2 * min(1, max(0, random()))
  }

  /// Calls `attempt` (with the attempt number, from 1) until it returns a response that is not
  /// retryable, throws an error that is not transient, or the retries are used up; then returns
  /// the last response or rethrows the last error. `willRetry` hears each retry before its wait.
  public func run(
    _ attempt: (Int) throws -> HTTPResponse, willRetry: ((RetryEvent) -> Void)? = nil
  ) throws -> HTTPResponse {
    var number = 1
    while true {
      let reason: String
      var retryAfter: Double?
      do {
        let response = try attempt(number)
        guard Self.isRetryable(status: response.status), number <= retries else { return response }
        reason = response.statusText
        retryAfter = Self.retryAfter(response.headers)
      } catch let error as HTTPError where error.isTransient && number <= retries {
        reason = error.description
      }
      let wait = delay(beforeRetry: number, retryAfter: retryAfter)
      willRetry?(RetryEvent(failedAttempt: number, attempts: retries + 1, reason: reason, delay: wait))
      sleep(wait)
      number += 1
    }
  }
}

/// A retry about to happen, for logs.
public struct RetryEvent: Sendable {
  /// The attempt that failed, from 1.
  public var failedAttempt: Int
  /// How many attempts the policy allows in all.
  public var attempts: Int
  /// What went wrong ("HTTP 503 Service Unavailable", a connection error).
  public var reason: String
  /// Seconds until the next attempt.
  public var delay: Double
}

/// HTTP dates (RFC 9110 IMF-fixdate, and the obsolete RFC 850 and asctime forms on input).
public enum HTTPDate {
  private static let formats = [
    "EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy",
  ]

  /// The date of an HTTP date header value; nil when it is none of the three forms.
  public static func parse(_ text: String) -> Date? {
    for format in formats {
      let formatter = DateFormatter()
      formatter.locale = Locale(identifier: "en_US_POSIX")
      formatter.timeZone = TimeZone(identifier: "GMT")
      formatter.dateFormat = format
      if let date = formatter.date(from: text) { return date }
    }
    return nil
  }

  /// The IMF-fixdate form of a date: "Sun, 06 Nov 1994 08:49:37 GMT".
  public static func format(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
    return formatter.string(from: date)
  }
}
