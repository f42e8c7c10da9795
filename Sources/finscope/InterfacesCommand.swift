import ArgumentParser
import FinscopeCapture
import Foundation
import FinscopeWire

struct Interfaces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the interfaces finscope live can capture on.",
        discussion: """
            Lists libpcap's capture devices (pcap_findalldevs) with their flags and addresses. \
            'any' captures on every interface at once (Linux cooked headers).
            """
    )

    func run() throws {
        let devices: [CaptureDevice]
        do {
            devices = try CaptureDevice.all()
        } catch {
            printError("finscope: error: \(error)")
            throw ExitCode(2)
        }
        if devices.isEmpty {
            print("no capture interfaces visible (capturing may need root: try sudo finscope interfaces)")
            return
        }
        let width = devices.map(\.name.count).max() ?? 0
        for device in devices {
            var line = device.name.padding(toLength: width + 2, withPad: " ", startingAt: 0)
            line += "[" + device.flags.joined(separator: ", ") + "]"
            if !device.addresses.isEmpty { line += "  " + device.addresses.joined(separator: " ") }
            if let description = device.description, !description.isEmpty { line += "  (\(description))" }
            print(line)
        }
    }
}
