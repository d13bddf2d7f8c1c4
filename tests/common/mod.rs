//! Helpers shared by integration tests (each test file that needs them says
//! `mod common;`).

/// The first line where two texts differ (expected first), for failure
/// messages about reports.
pub fn first_difference(expected: &[u8], got: &[u8]) -> String {
    let (a, b) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(got),
    );
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  expected {x}\n  got      {y}", i + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} and {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}
