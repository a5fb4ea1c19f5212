import DVCommands

@main
struct Entrypoint {
  static func main() {
    DV.run()
  }
}
