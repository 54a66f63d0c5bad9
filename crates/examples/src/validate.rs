//! Checks on tool arguments. Each check returns an error message that names the argument and
//! the expected form.

/// Checks that `value` is not blank, is a single line and has at most `max_chars` characters.
pub fn single_line(field: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} is empty; give a short one-line {field}"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{field} contains a line break or control character; give a single line"
        ));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(format!(
            "{field} has {chars} characters; the maximum is {max_chars}"
        ));
    }
    Ok(())
}

/// Checks that `value` has at most `max_bytes` bytes of UTF-8.
pub fn max_len(field: &str, value: &str, max_bytes: usize) -> Result<(), String> {
    if value.len() > max_bytes {
        return Err(format!(
            "{field} has {} bytes; the maximum is {max_bytes}",
            value.len()
        ));
    }
    Ok(())
}

/// Returns whether `haystack` contains `needle_lower`, ignoring case. `needle_lower` must already
/// be lower case.
pub fn contains_ignore_case(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_cases() {
        assert_eq!(single_line("title", "Groceries", 10), Ok(()));
        assert!(single_line("title", "  ", 10).is_err());
        assert!(single_line("title", "two\nlines", 10).is_err());
        assert!(single_line("title", "tab\there", 10).is_err());
        assert!(single_line("title", "eleven char", 10).is_err());
        assert_eq!(single_line("title", "ééééé", 5), Ok(()));
    }

    #[test]
    fn max_len_counts_bytes() {
        assert_eq!(max_len("body", "abc", 3), Ok(()));
        assert!(max_len("body", "abcd", 3).is_err());
    }

    #[test]
    fn contains_ignore_case_matches() {
        assert!(contains_ignore_case("Buy MILK today", "milk"));
        assert!(contains_ignore_case("Straße", "straße"));
        assert!(!contains_ignore_case("Buy bread", "milk"));
    }
}
