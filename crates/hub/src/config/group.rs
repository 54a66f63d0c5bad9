//! Group name lookup for the socket's owner group.

use std::path::Path;

/// The host's group database.
pub(super) const GROUP_FILE: &str = "/etc/group";

/// Finds the gid of group `name` in a group(5) file.
///
/// NOTE: this reads only the file, so a group that exists only through another NSS source,
/// such as LDAP or systemd-userdbd, is not found. A numeric gid in the config avoids the lookup.
pub(super) fn lookup_group(name: &str, group_file: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(group_file).map_err(|error| {
        format!(
            "failed to read {} to look up group \"{name}\": {error}; give a numeric gid instead",
            group_file.display()
        )
    })?;
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(entry_name), Some(_password), Some(gid)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if entry_name == name {
            return gid.trim().parse().map_err(|_| {
                format!(
                    "group \"{name}\" has an invalid gid \"{gid}\" in {}",
                    group_file.display()
                )
            });
        }
    }
    Err(format!(
        "group \"{name}\" not found in {}; create it with groupadd or give a numeric gid",
        group_file.display()
    ))
}
