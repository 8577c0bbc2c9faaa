//! A course's join code: short enough to read out in class ("KM7R-Q2XD"),
//! typed back without fuss (case, spaces and the hyphen do not matter).
//!
//! New codes take 8 characters from an alphabet without the look-alikes
//! I, O, 0 and 1 (40 bits: a clash is left to the database's unique index).
//! Courses older than codes got theirs from their id, in hexadecimal, so a
//! code may also hold 0 and 1; both kinds are read the same way.

/// The characters of a new code.
pub const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Characters in a code, the hyphen aside.
pub const LENGTH: usize = 8;

/// A new code from 8 random bytes (the caller draws them): "KM7R-Q2XD".
pub fn from_random(bytes: [u8; LENGTH]) -> String {
    let letters: String = bytes.iter().map(|byte| ALPHABET[usize::from(byte % 32)] as char).collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// A code as typed, in its stored form ("km7r q2xd" gives "KM7R-Q2XD"), or
/// `None` when it cannot be one: 8 letters or digits once spaces and
/// hyphens are taken out.
pub fn normalize(typed: &str) -> Option<String> {
    let letters: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    if letters.chars().count() != LENGTH || !letters.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{}-{}", &letters[..4], &letters[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_code_is_two_groups_of_four_without_look_alikes() {
        let code = from_random([0, 1, 8, 13, 31, 32, 200, 255]);
        assert_eq!(code, "ABJP-9AJ9");
        for byte in 0..=255u8 {
            let c = ALPHABET[usize::from(byte % 32)] as char;
            assert!(!"IO01".contains(c), "{c} is a look-alike");
        }
    }

    #[test]
    fn typed_codes_are_read_whatever_their_case_spaces_and_hyphen() {
        for typed in ["KM7R-Q2XD", "km7r-q2xd", " km7r q2xd ", "KM7RQ2XD", "KM-7R-Q2-XD"] {
            assert_eq!(normalize(typed).as_deref(), Some("KM7R-Q2XD"), "{typed:?}");
        }
        assert_eq!(normalize("3f9a-1c0b").as_deref(), Some("3F9A-1C0B"), "a code from an id");
        for bad in ["", "KM7R-Q2X", "KM7R-Q2XDE", "KM7R_Q2XD", "KM7R-Q2XÉ", "8c5d6f1e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
