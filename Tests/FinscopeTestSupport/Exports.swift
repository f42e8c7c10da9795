// Tests that use the support library also see FinscopeWire's public types
// (`TCPFlags`, `IPAddress`, `LinkKind`, ...) without importing it themselves.
@_exported import FinscopeWire
