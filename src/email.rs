//! `sx email`: the SMTP client. Its transport, message building and offline queue
//! are the subject of their own issue; until then it says so and exits 69.

use crate::cli::EmailArgs;
use crate::exit;

pub fn run(_args: EmailArgs) -> i32 {
    eprintln!("sx email: the SMTP client is not available in this build yet");
    exit::UNAVAILABLE
}
