/// finscope's version, in one place: `finscope --version` prints it and the JSON reports
/// carry it as `source.finscopeVersion`.
public enum FinscopeVersion {
    public static let string = "0.1.0"
}
