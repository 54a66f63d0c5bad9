//! Reading the bearer token that TCP clients must send.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ConfigError;

/// Shortest accepted token. 16 random characters are out of reach of guessing over a network.
pub(super) const MIN_TOKEN_LEN: usize = 16;

/// Maximum length of the first line that is read. A real token is far shorter.
const MAX_LINE_BYTES: u64 = 4096;

/// The permission bit that lets every user read a file.
const WORLD_READABLE: u32 = 0o004;

/// Reads and checks the token in `path`: a regular file, not world-readable, whose first line
/// contains at least [`MIN_TOKEN_LEN`] characters after trimming whitespace.
pub(super) fn read_token(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::TokenRead {
        path: path.to_path_buf(),
        source,
    };

    // The checks use the metadata of the opened file, so a rename in between cannot swap it.
    let file = File::open(path).map_err(read_error)?;
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & WORLD_READABLE != 0 {
        return Err(ConfigError::TokenWorldReadable {
            path: path.to_path_buf(),
            mode,
        });
    }

    let mut line = String::new();
    BufReader::new(file.take(MAX_LINE_BYTES))
        .read_line(&mut line)
        .map_err(read_error)?;
    let token = line.trim();
    if token.is_empty() {
        return Err(ConfigError::TokenEmpty {
            path: path.to_path_buf(),
        });
    }
    let length = token.chars().count();
    if length < MIN_TOKEN_LEN {
        return Err(ConfigError::TokenTooShort {
            path: path.to_path_buf(),
            length,
        });
    }
    Ok(token.to_owned())
}
