#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

const NOTES: &str = r#"
name = "notes"
description = "Keeps short text notes in its private state and searches them."
command = "bulkhead-app-notes"
args = ["--verbose"]
cwd = "/state"
[env]
NOTES_GREETING = "hello"

[[mounts]]
source = "/opt/myapp"

[[mounts]]
source = "/srv/shared"
target = "/data"
writable = true

[state]
persistent = true

[limits]
memory = "256MiB"
pids = 64
cpu = 0.5
call_timeout = "10s"

[network]
mode = "none"

[tools]
expose = ["add_note", "list_notes", "delete_note"]
destructive = ["delete_note"]
"#;

const MINIMAL: &str = r#"
name = "min"
description = "A minimal app."
command = "/usr/bin/true"
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::from_toml(text, Path::new("apps.d/x.toml"))
}

fn error_message(text: &str) -> String {
    match parse(text) {
        Ok(manifest) => panic!("expected an error, parsed {manifest:?}"),
        Err(error) => error.to_string(),
    }
}

/// Returns MINIMAL with `extra` appended, for tests of one key.
fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}\n")
}

#[test]
fn full_manifest_parses() {
    let manifest = parse(NOTES).unwrap();

    assert_eq!(manifest.name, "notes");
    assert_eq!(manifest.command, "bulkhead-app-notes");
    assert_eq!(manifest.args, vec!["--verbose".to_owned()]);
    assert_eq!(manifest.cwd, PathBuf::from("/state"));
    assert_eq!(
        manifest.env.get("NOTES_GREETING").map(String::as_str),
        Some("hello")
    );
    assert_eq!(
        manifest.mounts,
        vec![
            MountEntry {
                source: "/opt/myapp".into(),
                target: "/opt/myapp".into(),
                writable: false,
            },
            MountEntry {
                source: "/srv/shared".into(),
                target: "/data".into(),
                writable: true,
            },
        ]
    );

    assert!(manifest.state.persistent);
    assert_eq!(manifest.limits.memory_bytes, 256 << 20);
    assert_eq!(manifest.limits.pids, 64);
    assert_eq!(manifest.limits.cpu_millis, 500);
    assert_eq!(manifest.limits.call_timeout, Duration::from_secs(10));
    assert_eq!(manifest.network.mode, NetworkMode::None);
    assert_eq!(manifest.tools.destructive, vec!["delete_note".to_owned()]);
}

#[test]
fn minimal_manifest_gets_defaults() {
    let manifest = parse(MINIMAL).unwrap();
    assert!(manifest.args.is_empty());
    assert_eq!(manifest.cwd, PathBuf::from("/state"));
    assert!(manifest.env.is_empty());
    assert!(manifest.mounts.is_empty());
    assert!(!manifest.state.persistent);
    assert_eq!(manifest.limits.memory_bytes, 512 << 20);
    assert_eq!(manifest.limits.pids, 128);
    assert_eq!(manifest.limits.cpu_millis, 1000);
    assert_eq!(manifest.limits.call_timeout, Duration::from_secs(30));
    assert_eq!(manifest.network.mode, NetworkMode::None);
    assert_eq!(manifest.tools, ToolsConfig::default());
}

#[test]
fn exposed_and_destructive_lookup() {
    let notes = parse(NOTES).unwrap();
    assert!(notes.is_exposed("add_note"));
    assert!(!notes.is_exposed("search_notes"));
    assert!(notes.is_destructive("delete_note"));
    assert!(!notes.is_destructive("add_note"));

    let minimal = parse(MINIMAL).unwrap();
    assert!(minimal.is_exposed("anything"));
    assert!(!minimal.is_destructive("anything"));
}

#[test]
fn unknown_key_names_line_and_choices() {
    let message = error_message("name = \"x\"\ndescription = \"d\"\ncommnd = \"/bin/x\"\n");
    assert!(
        message.starts_with("apps.d/x.toml: unknown key \"commnd\" at line 3; expected one of name, description, command, args, cwd, env"),
        "{message}"
    );
}

#[test]
fn unknown_key_in_nested_table() {
    let message = error_message(&minimal_with("[limits]\nmemroy = \"1GiB\""));
    assert_eq!(
        message,
        "apps.d/x.toml: unknown key \"limits.memroy\" at line 7; expected one of memory, pids, \
         cpu, call_timeout"
    );
}

#[test]
fn unknown_key_in_mount() {
    let message = error_message(&minimal_with("[[mounts]]\nsorce = \"/opt\""));
    assert!(
        message.contains("unknown key \"mounts[0].sorce\" at line 7"),
        "{message}"
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let message = error_message("name = \"x\"\ndescription = \n");
    assert_eq!(
        message,
        "apps.d/x.toml: description: invalid string; expected `\"`, `'` at line 2, column 15"
    );
}

#[test]
fn wrong_type_names_key() {
    let message = error_message(&minimal_with("[limits]\npids = \"many\""));
    assert_eq!(
        message,
        "apps.d/x.toml: limits.pids: invalid type: string \"many\", expected an integer at line \
         7, column 8"
    );
}

#[test]
fn missing_required_keys() {
    let message = error_message("description = \"d\"\ncommand = \"/bin/x\"\n");
    assert_eq!(
        message,
        "apps.d/x.toml: name: missing; add a line such as name = \"notes\""
    );
    assert!(
        error_message("name = \"x\"\ncommand = \"/bin/x\"\n").contains(": description: missing")
    );
    assert!(error_message("name = \"x\"\ndescription = \"d\"\n").contains(": command: missing"));
}

/// Returns the manifest error for MINIMAL with `key = value` set at the top level, which
/// replaces the value MINIMAL has.
fn top_level_error(key: &str, value: &str) -> String {
    let text: String = MINIMAL
        .lines()
        .filter(|line| !line.starts_with(&format!("{key} =")))
        .map(|line| format!("{line}\n"))
        .collect();
    error_message(&format!("{key} = {value}\n{text}"))
}

#[test]
fn name_pattern() {
    for bad in [
        "\"\"",
        "\"Notes\"",
        "\"-x\"",
        "\"_x\"",
        "\"a b\"",
        "\"é\"",
        &format!("\"{}\"", "a".repeat(64)),
    ] {
        let message = top_level_error("name", bad);
        assert!(message.contains("name: invalid name"), "{bad}: {message}");
    }
    for good in ["a", "0app", "my_app-2"] {
        let text = MINIMAL.replace("name = \"min\"", &format!("name = \"{good}\""));
        assert_eq!(parse(&text).unwrap().name, good);
    }
    let longest = "a".repeat(63);
    let text = MINIMAL.replace("name = \"min\"", &format!("name = \"{longest}\""));
    assert_eq!(parse(&text).unwrap().name, longest);
}

#[test]
fn description_not_blank() {
    let message = top_level_error("description", "\"  \"");
    assert!(message.contains("description: is empty"), "{message}");
}

#[test]
fn command_forms() {
    let cases = [
        ("\"\"", "command: is empty"),
        ("\"bin/server\"", "is a relative path"),
        ("\"./server\"", "is a relative path"),
        ("\"/opt/../bin/sh\"", "contains a \"..\" component"),
        ("\"/\"", "is a folder"),
        (
            "\"python3 server.py\"",
            "put the program's arguments in args",
        ),
        ("\"a\\u0000b\"", "NUL"),
        ("\"..\"", "is not a file name"),
    ];
    for (value, expected) in cases {
        let message = top_level_error("command", value);
        assert!(message.contains(expected), "{value}: {message}");
    }
    let text = MINIMAL.replace("/usr/bin/true", "/opt//app/bin/server");
    assert_eq!(parse(&text).unwrap().command, "/opt/app/bin/server");
}

#[test]
fn args_reject_nul() {
    let message = top_level_error("args", "[\"ok\", \"a\\u0000\"]");
    assert!(
        message.contains("args[1]: contains a NUL byte"),
        "{message}"
    );
}

#[test]
fn cwd_rules() {
    let message = top_level_error("cwd", "\"/proc/self/cwd\"");
    assert!(
        message.contains("cwd: \"/proc/self/cwd\" is under /proc"),
        "{message}"
    );
    assert!(
        message.contains("could leak a host descriptor"),
        "{message}"
    );
    assert!(top_level_error("cwd", "\"/dev/shm\"").contains("is under /dev"));
    assert!(top_level_error("cwd", "\"/sys\"").contains("is under /sys"));
    assert!(top_level_error("cwd", "\"state\"").contains("is not an absolute path"));
    assert!(top_level_error("cwd", "\"/state/../etc\"").contains("\"..\" component"));
    assert!(top_level_error("cwd", "\"/state/./x\"").contains("\".\" component"));

    let text = minimal_with("").replace("command", "cwd = \"/procfs\"\ncommand");
    assert_eq!(parse(&text).unwrap().cwd, PathBuf::from("/procfs"));
}

#[test]
fn env_rules() {
    let message = error_message(&minimal_with("[env]\n\"1X\" = \"v\""));
    assert!(
        message.contains("env: invalid variable name \"1X\""),
        "{message}"
    );
    assert!(
        error_message(&minimal_with("[env]\n\"A-B\" = \"v\"")).contains("invalid variable name")
    );
    assert!(error_message(&minimal_with("[env]\n\"\" = \"v\"")).contains("invalid variable name"));
    let message = error_message(&minimal_with("[env]\nKEY = \"a\\u0000\""));
    assert!(
        message.contains("env.KEY: contains a NUL byte"),
        "{message}"
    );
    let manifest = parse(&minimal_with("[env]\n_Under_9 = \"\"")).unwrap();
    assert_eq!(manifest.env.len(), 1);
}

fn mount_error(fields: &str) -> String {
    error_message(&minimal_with(&format!("[[mounts]]\n{fields}")))
}

#[test]
fn mount_source_rules() {
    assert!(mount_error("target = \"/data\"").contains("mounts[0].source: missing"));
    assert!(mount_error("source = \"opt/x\"").contains("is not an absolute path"));
    assert!(mount_error("source = \"/opt/../etc\"").contains("\"..\" component"));
    assert!(mount_error("source = \"/\"").contains("would show the whole host"));
    for kernel in ["/proc", "/proc/1/root", "/sys/fs", "/dev/sda"] {
        let message = mount_error(&format!("source = \"{kernel}\"\ntarget = \"/data\""));
        assert!(
            message.contains("which the sandbox never binds"),
            "{kernel}: {message}"
        );
    }
}

#[test]
fn mount_target_rules() {
    let cases = [
        ("/", "would hide the whole sandbox"),
        ("/etc", "\"/etc\" is reserved"),
        ("/proc/x", "is under /proc"),
        ("/dev", "is under /dev"),
        ("/sys/x", "is under /sys"),
        ("/tmp", "is under /tmp, which is reserved"),
        ("/tmp/x", "is under /tmp, which is reserved"),
        ("/state", "is under /state, which is reserved"),
        ("/state/cache", "is under /state, which is reserved"),
        ("/app", "is under /app, which is reserved"),
        ("/app/bin/x", "is under /app, which is reserved"),
        ("data", "is not an absolute path"),
        ("/data/..", "\"..\" component"),
    ];
    for (target, expected) in cases {
        let message = mount_error(&format!("source = \"/srv/x\"\ntarget = \"{target}\""));
        assert!(
            message.contains("mounts[0].target: "),
            "{target}: {message}"
        );
        assert!(message.contains(expected), "{target}: {message}");
    }
    let manifest = parse(&minimal_with(
        "[[mounts]]\nsource = \"/srv/x\"\ntarget = \"/etc/myapp\"",
    ))
    .unwrap();
    assert_eq!(manifest.mounts[0].target, PathBuf::from("/etc/myapp"));
}

#[test]
fn mount_default_target_is_checked() {
    let message = mount_error("source = \"/tmp/x\"");
    assert!(
        message.contains("mounts[0].target: \"/tmp/x\" is under /tmp"),
        "{message}"
    );
}

#[test]
fn mount_duplicate_target() {
    let text = minimal_with(
        "[[mounts]]\nsource = \"/srv/a\"\ntarget = \"/data\"\n\
         [[mounts]]\nsource = \"/srv/b\"\ntarget = \"/data/\"",
    );
    let message = error_message(&text);
    assert!(
        message.contains("mounts[1].target: \"/data\" is already the target of mounts[0]"),
        "{message}"
    );
}

fn limits_error(fields: &str) -> String {
    error_message(&minimal_with(&format!("[limits]\n{fields}")))
}

fn limits(fields: &str) -> LimitsConfig {
    parse(&minimal_with(&format!("[limits]\n{fields}")))
        .unwrap()
        .limits
}

#[test]
fn memory_limit_rules() {
    assert_eq!(
        limits_error("memory = \"12 parsecs\""),
        "apps.d/x.toml: limits.memory: invalid size \"12 parsecs\": use a whole number with B, \
         K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB, such as \"256MiB\""
    );
    assert_eq!(
        limits_error("memory = \"4MiB\""),
        "apps.d/x.toml: limits.memory: 4MiB is below the minimum of 8MiB"
    );
    assert!(limits_error("memory = \"2TiB\"").contains("2TiB is above the maximum of 1TiB"));
    assert!(limits_error("memory = \"99999999999999999999\"").contains("too large"));
    assert_eq!(limits("memory = \"8MiB\"").memory_bytes, 8 << 20);
    assert_eq!(limits("memory = \"1TiB\"").memory_bytes, 1 << 40);
    assert_eq!(limits("memory = \"1G\"").memory_bytes, 1 << 30);
}

#[test]
fn pids_limit_rules() {
    assert!(limits_error("pids = 0").contains("limits.pids: 0 is below the minimum of 1"));
    assert!(limits_error("pids = -5").contains("-5 is below the minimum of 1"));
    assert!(limits_error("pids = 65537").contains("65537 is above the maximum of 65536"));
    assert_eq!(limits("pids = 1").pids, 1);
    assert_eq!(limits("pids = 65536").pids, 65536);
}

#[test]
fn cpu_limit_rules() {
    for bad in ["0", "-1", "64.5", "nan", "inf"] {
        let message = limits_error(&format!("cpu = {bad}"));
        assert!(
            message.contains("limits.cpu: ") && message.contains("out of range"),
            "{bad}: {message}"
        );
    }
    assert!(limits_error("cpu = 0.0004").contains("below the smallest share of 0.001 CPUs"));
    assert_eq!(limits("cpu = 0.001").cpu_millis, 1);
    assert_eq!(limits("cpu = 0.25").cpu_millis, 250);
    assert_eq!(limits("cpu = 2").cpu_millis, 2000);
    assert_eq!(limits("cpu = 64").cpu_millis, 64_000);
}

#[test]
fn call_timeout_rules() {
    assert!(limits_error("call_timeout = \"30\"")
        .contains("limits.call_timeout: invalid duration \"30\""));
    assert!(limits_error("call_timeout = \"50ms\"").contains("50ms is below the minimum of 100ms"));
    assert!(limits_error("call_timeout = \"2h\"").contains("2h is above the maximum of 1h"));
    assert_eq!(
        limits("call_timeout = \"100ms\"").call_timeout,
        Duration::from_millis(100)
    );
    assert_eq!(
        limits("call_timeout = \"1h\"").call_timeout,
        Duration::from_secs(3600)
    );
}

#[test]
fn network_mode_rules() {
    assert_eq!(
        error_message(&minimal_with("[network]\nmode = \"open\"")),
        "apps.d/x.toml: network.mode: \"open\" is not a network mode; use \"none\" or \"egress\""
    );
    let manifest = parse(&minimal_with("[network]\nmode = \"none\"")).unwrap();
    assert_eq!(manifest.network.mode.as_str(), "none");
    assert!(manifest.network.allow.is_empty());
    assert_eq!(manifest.network.max_connections, super::DEFAULT_MAX_CONNECTIONS);
}

#[test]
fn network_egress_allowlist() {
    let manifest = parse(&minimal_with(
        "[network]\nmode = \"egress\"\nallow = [\"API.example.com:443\", \"*.example.org:443\", \"127.0.0.1:8080\"]\nmax_connections = 4",
    ))
    .unwrap();
    assert_eq!(manifest.network.mode, NetworkMode::Egress);
    assert!(manifest.network.mode.has_egress());
    let entries: Vec<String> = manifest.network.allow.iter().map(ToString::to_string).collect();
    assert_eq!(entries, ["api.example.com:443", "*.example.org:443", "127.0.0.1:8080"]);
    assert_eq!(manifest.network.max_connections, 4);
}

#[test]
fn network_egress_errors() {
    let network = |fields: &str| error_message(&minimal_with(&format!("[network]\n{fields}")));
    assert_eq!(
        network("mode = \"egress\""),
        "apps.d/x.toml: network.allow: is empty, so an egress app could reach nothing; list hosts such as \
         allow = [\"api.example.com:443\"]"
    );
    assert_eq!(
        network("allow = [\"api.test:80\"]"),
        "apps.d/x.toml: network.allow: is set but network.mode is \"none\"; set mode = \"egress\" to use \
         the allowlist, or remove allow"
    );
    assert_eq!(
        network("mode = \"egress\"\nallow = [\"api.test\"]"),
        "apps.d/x.toml: network.allow[0]: \"api.test\": \"api.test\" has no port; write it as host:port"
    );
    assert!(network("mode = \"egress\"\nallow = [\"a.*.test:80\"]").contains("network.allow[0]: \"a.*.test:80\": a wildcard"));
    assert!(network("mode = \"egress\"\nallow = [\"api.test:80\", \"API.test:80\"]").contains("network.allow[1]: \"API.test:80\" is listed twice"));
    assert!(network("mode = \"egress\"\nallow = [\"api.test:80\"]\nmax_connections = 0").contains("network.max_connections: 0 is below the minimum of 1"));
    assert!(network("mode = \"egress\"\nallow = [\"api.test:80\"]\nmax_connections = 5000").contains("network.max_connections: 5000 is above the maximum of 4096"));
}

#[test]
fn tools_rules() {
    let tools = |fields: &str| error_message(&minimal_with(&format!("[tools]\n{fields}")));
    assert!(tools("expose = [\"a\", \"\"]").contains("tools.expose[1]: is empty"));
    assert!(tools("destructive = [\" \"]").contains("tools.destructive[0]: is empty"));
    assert!(tools("expose = [\"a\", \"a\"]").contains("tools.expose: \"a\" is listed twice"));
    assert!(
        tools("destructive = [\"b\", \"b\"]").contains("tools.destructive: \"b\" is listed twice")
    );
    assert_eq!(
        tools("expose = [\"a\"]\ndestructive = [\"b\"]"),
        "apps.d/x.toml: tools.destructive: \"b\" is not in tools.expose; add it to expose or \
         remove it from destructive"
    );

    let manifest = parse(&minimal_with("[tools]\ndestructive = [\"wipe\"]")).unwrap();
    assert!(manifest.is_exposed("wipe"));
    assert!(manifest.is_destructive("wipe"));

    let manifest = parse(&minimal_with("[tools]\nexpose = []")).unwrap();
    assert!(!manifest.is_exposed("anything"));
}

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let id = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("bulkhead-manifest-{}-{id}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_reads_file() {
    let dir = TempDir::new();
    let path = dir.write("notes.toml", NOTES);
    assert_eq!(Manifest::load(&path).unwrap().name, "notes");
}

#[test]
fn load_rejects_large_and_missing_files() {
    let dir = TempDir::new();
    let padding = "#".repeat(usize::try_from(MAX_FILE_BYTES).unwrap());
    let path = dir.write("big.toml", &format!("{MINIMAL}{padding}"));
    let error = Manifest::load(&path).unwrap_err();
    assert!(matches!(error, ManifestError::Read { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("larger than the 1048576-byte limit"),
        "{error}"
    );

    let missing = dir.0.join("missing.toml");
    let error = Manifest::load(&missing).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: failed to read", missing.display())),
        "{error}"
    );

    let error = Manifest::load(&dir.0).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
}

#[test]
fn load_rejects_non_utf8() {
    let dir = TempDir::new();
    let path = dir.0.join("latin1.toml");
    std::fs::write(&path, b"name = \"caf\xe9\"\n").unwrap();
    let error = Manifest::load(&path).unwrap_err();
    assert!(error.to_string().contains("not valid UTF-8"), "{error}");
}

#[test]
fn load_dir_sorts_and_filters() {
    let dir = TempDir::new();
    dir.write("b.toml", &MINIMAL.replace("\"min\"", "\"bravo\""));
    dir.write("a.toml", &MINIMAL.replace("\"min\"", "\"alpha\""));
    dir.write("notes.txt", "not a manifest");
    dir.write(".#a.toml", "editor lock file");
    dir.write("broken.toml", "name = ");
    std::fs::create_dir(dir.0.join("sub.toml")).unwrap();

    let (loaded, problems) = load_dir(&dir.0);
    let names: Vec<&str> = loaded.iter().map(|(_, m)| m.name.as_str()).collect();
    assert_eq!(names, ["alpha", "bravo"]);
    assert_eq!(loaded[0].0, dir.0.join("a.toml"));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, dir.0.join("broken.toml"));
    assert!(matches!(problems[0].1, ManifestError::Parse { .. }));
}

#[test]
fn load_dir_duplicate_name_names_both_files() {
    let dir = TempDir::new();
    dir.write("a.toml", MINIMAL);
    dir.write("b.toml", MINIMAL);
    let (loaded, problems) = load_dir(&dir.0);
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, dir.0.join("a.toml"));
    assert_eq!(problems.len(), 1);
    let message = problems[0].1.to_string();
    let expected = format!(
        "{}: name \"min\" is already used by {}; give each app a unique name",
        dir.0.join("b.toml").display(),
        dir.0.join("a.toml").display()
    );
    assert_eq!(message, expected);
}

#[test]
fn load_dir_missing_folder() {
    let dir = TempDir::new();
    let missing = dir.0.join("apps.d");
    let (loaded, problems) = load_dir(&missing);
    assert!(loaded.is_empty());
    assert_eq!(problems.len(), 1);
    assert!(matches!(problems[0].1, ManifestError::ReadDir { .. }));
}

#[test]
fn documented_examples_parse() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/manifest.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert_eq!(
        blocks.len(),
        4,
        "expected four TOML examples in {}",
        doc_path.display()
    );

    let names: Vec<String> = blocks
        .iter()
        .map(|block| match Manifest::from_toml(block, &doc_path) {
            Ok(manifest) => manifest.name,
            Err(error) => panic!("documented example failed: {error}"),
        })
        .collect();
    assert_eq!(names, ["notes", "notes", "time", "files"]);
}
