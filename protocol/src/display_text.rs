//! Text that other people's screens will show: display names and notes (spec §3.1, §6.4).
//!
//! Such text comes from another party and is printed on terminals and in apps, so it must
//! not carry control characters (which can move the cursor, fake lines or drive the
//! terminal) or invisible format characters (bidirectional overrides and zero-width
//! characters, which can make one name look like another).

/// True for characters kith refuses in names and notes: Unicode general category Cc
/// (controls, including newline and ESC), the Cf format characters listed below, and the
/// line and paragraph separators (spec §3.1).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

/// True when `text` has no forbidden character (spec §3.1).
pub fn is_displayable(text: &str) -> bool {
    !text.chars().any(is_forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbids_controls_and_invisible_formatting() {
        assert!(is_displayable("Chloë — great in snow ★"));
        for bad in [
            "a\nb",
            "a\u{1b}[2J",
            "evil\u{202E}txt",
            "zero\u{200B}width",
            "bom\u{FEFF}",
            "tag\u{E0041}",
        ] {
            assert!(!is_displayable(bad), "{bad:?}");
        }
    }
}
