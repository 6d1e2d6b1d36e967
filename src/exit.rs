//! sysexits(3) codes used by every command.

pub const OK: i32 = 0;
pub const USAGE: i32 = 64;
pub const DATAERR: i32 = 65;
pub const NOINPUT: i32 = 66;
pub const UNAVAILABLE: i32 = 69;
pub const SOFTWARE: i32 = 70;
pub const CANTCREAT: i32 = 73;
pub const IOERR: i32 = 74;
pub const TEMPFAIL: i32 = 75;
pub const NOPERM: i32 = 77;
pub const CONFIG: i32 = 78;
