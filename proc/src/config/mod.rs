//! `scorpiox-env.txt` loading (DESIGN.md §5): lookup order, KEY=VALUE parsing,
//! environment overrides and typed, validated values. Every error names where the
//! bad value came from (file:line or the environment) and the key.

pub mod keys;
mod server;

pub use server::{domains_in_file, valid_domain, ServerConfig};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// sysexits EX_CONFIG.
pub const EX_CONFIG: i32 = 78;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env,
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Env => write!(f, "environment"),
            Origin::Default => write!(f, "built-in default"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub origin: Origin,
    pub key: String,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.msg)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The raw KEY=VALUE set after file + environment, before typing.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    pub file: Option<PathBuf>,
    /// No config file was found: use the embedded development defaults.
    pub embedded: bool,
    /// The directory relative paths (keys, the config file's own) are taken
    /// from: the working directory of the first load, so a daemon that has
    /// since changed to `/` reloads the same files.
    pub base: PathBuf,
    values: HashMap<String, (String, Origin)>,
    pub warnings: Vec<String>,
}

/// A config file that sets client keys and no server key (`sx email`'s).
fn client_only(p: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(p) else {
        return false;
    };
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    keys.iter().any(|k| k.starts_with("SMTP_")) && !keys.iter().any(|k| k.starts_with("EMAIL_"))
}

/// The lookup order of DESIGN.md §5 (after `--config`).
pub fn candidate_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("SCORPIOX_ENV") {
        v.push(PathBuf::from(p));
    }
    v.push(PathBuf::from("scorpiox-env.txt"));
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
        v.push(PathBuf::from(x).join("scorpiox/scorpiox-env.txt"));
    } else if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".config/scorpiox/scorpiox-env.txt"));
    }
    v.push(PathBuf::from("/etc/scorpiox/scorpiox-env.txt"));
    v
}

impl RawConfig {
    /// Find and parse the config file (explicit path first), then apply the
    /// environment; relative paths are taken from the working directory.
    pub fn load(explicit: Option<&Path>) -> Result<RawConfig, ConfigError> {
        let base = std::env::current_dir().map_err(|e| ConfigError {
            origin: Origin::Default,
            key: String::new(),
            msg: format!("cannot tell the working directory: {e}"),
        })?;
        Self::load_in(explicit, &base)
    }

    /// As `load`, relative paths taken from `base` (a reload: the first
    /// load's base, whatever the working directory is now).
    pub fn load_in(explicit: Option<&Path>, base: &Path) -> Result<RawConfig, ConfigError> {
        Self::load_with(explicit, base, false)
    }

    /// The server's load: as `load_in`, but a file found by the lookup that
    /// sets client keys (SMTP_*) and no server key is `sx email`'s, not the
    /// server's, and the lookup goes on past it (with a warning saying so).
    pub fn load_server_in(explicit: Option<&Path>, base: &Path) -> Result<RawConfig, ConfigError> {
        Self::load_with(explicit, base, true)
    }

    fn load_with(
        explicit: Option<&Path>,
        base: &Path,
        skip_client_files: bool,
    ) -> Result<RawConfig, ConfigError> {
        let mut skipped = Vec::new();
        let file = match explicit {
            Some(p) => Some(base.join(p)),
            None => candidate_files()
                .into_iter()
                .map(|p| base.join(p))
                .filter(|p| p.is_file())
                .find(|p| {
                    let client_only = skip_client_files && client_only(p);
                    if client_only {
                        skipped.push(format!(
                            "{}: only client (SMTP_*) keys, so not the server's configuration: skipped",
                            p.display()
                        ));
                    }
                    !client_only
                }),
        };
        let mut raw = match &file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    origin: Origin::File {
                        path: p.clone(),
                        line: 0,
                    },
                    key: String::new(),
                    msg: format!("cannot read config file: {e}"),
                })?;
                Self::parse(p, &text)?
            }
            None => RawConfig::default(),
        };
        raw.file = file;
        raw.embedded = raw.file.is_none();
        raw.base = base.to_path_buf();
        raw.warnings.extend(skipped);
        for def in keys::SERVER_KEYS.iter().chain(keys::CLIENT_KEYS) {
            if let Ok(v) = std::env::var(def.name) {
                raw.values.insert(def.name.to_string(), (v, Origin::Env));
            }
        }
        Ok(raw)
    }

    /// Parse file text. Malformed lines are errors; unknown keys are warnings.
    pub fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
        let mut raw = RawConfig::default();
        for (i, line) in text.lines().enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: i + 1,
            };
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let t = t.strip_prefix("export ").unwrap_or(t);
            let Some((key, value)) = t.split_once('=') else {
                return Err(ConfigError {
                    origin,
                    key: String::new(),
                    msg: format!("expected KEY=VALUE, found {:?}", truncate(t, 60)),
                });
            };
            let key = key.trim();
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(ConfigError {
                    origin,
                    key: key.to_string(),
                    msg: "key must be upper-case letters, digits and _".into(),
                });
            }
            let value = unquote(value.trim());
            if keys::find(key).is_none() {
                raw.warnings
                    .push(format!("{origin}: unknown key {key} ignored"));
                continue;
            }
            raw.values.insert(key.to_string(), (value, origin));
        }
        Ok(raw)
    }

    /// The value and its origin, falling back to the key's default.
    pub fn get(&self, name: &str) -> (String, Origin) {
        if let Some((v, o)) = self.values.get(name) {
            return (v.clone(), o.clone());
        }
        let def = keys::find(name);
        let d = match def {
            Some(d) if self.embedded => d.embedded.unwrap_or(d.default),
            Some(d) => d.default,
            None => "",
        };
        (d.to_string(), Origin::Default)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn err(&self, name: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.get(name).1,
            key: name.to_string(),
            msg: msg.into(),
        }
    }

    pub fn string(&self, name: &str) -> String {
        self.get(name).0
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, ConfigError> {
        let (v, _) = self.get(name);
        v.trim()
            .parse::<T>()
            .map_err(|_| self.err(name, format!("{v:?} is not a valid number")))
    }

    pub fn port(&self, name: &str) -> Result<u16, ConfigError> {
        let (v, _) = self.get(name);
        v.trim()
            .parse::<u16>()
            .map_err(|_| self.err(name, format!("{v:?} is not a port number (0-65535)")))
    }

    /// A size with optional K/M/G suffix.
    pub fn size(&self, name: &str) -> Result<u64, ConfigError> {
        let (v, _) = self.get(name);
        parse_size(&v)
            .ok_or_else(|| self.err(name, format!("{v:?} is not a size (e.g. 52428800, 50M)")))
    }

    /// A path; relative paths are taken from the current directory.
    pub fn path(&self, name: &str) -> Result<PathBuf, ConfigError> {
        let (v, _) = self.get(name);
        if v.is_empty() {
            return Err(self.err(name, "must not be empty"));
        }
        let p = PathBuf::from(&v);
        if p.is_absolute() {
            return Ok(p);
        }
        if self.base.as_os_str().is_empty() {
            // Parsed from text alone (tests): the working directory.
            let cwd = std::env::current_dir()
                .map_err(|e| self.err(name, format!("cannot resolve relative path: {e}")))?;
            return Ok(cwd.join(p));
        }
        Ok(self.base.join(p))
    }

    /// A path, or None when the key is set empty (the feature is off).
    pub fn optional_path(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        if self.get(name).0.trim().is_empty() {
            return Ok(None);
        }
        self.path(name).map(Some)
    }

    pub fn duration(&self, name: &str) -> Result<u64, ConfigError> {
        let (v, _) = self.get(name);
        parse_duration(&v).ok_or_else(|| {
            self.err(
                name,
                format!("{v:?} is not a duration (e.g. 90s, 5m, 2h, 5d)"),
            )
        })
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .0
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        let (v, _) = self.get(name);
        match v.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => Ok(true),
            "no" | "false" | "0" | "off" => Ok(false),
            _ => Err(self.err(name, format!("{v:?} is not yes or no"))),
        }
    }

    pub fn error(&self, name: &str, msg: impl Into<String>) -> ConfigError {
        self.err(name, msg)
    }
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        return v[1..v.len() - 1].to_string();
    }
    v.to_string()
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// "90", "30s", "5m", "2h", "1d" -> seconds.
pub fn parse_duration(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 's') => (&v[..i], 1),
        (i, 'm') => (&v[..i], 60),
        (i, 'h') => (&v[..i], 3600),
        (i, 'd') => (&v[..i], 86_400),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'k' | 'K') => (&v[..i], 1024),
        (i, 'm' | 'M') => (&v[..i], 1024 * 1024),
        (i, 'g' | 'G') => (&v[..i], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_line() {
        let p = Path::new("/x/scorpiox-env.txt");
        let raw =
            RawConfig::parse(p, "# c\n\nEMAIL_SMTP_PORT=2525\nEMAIL_DOMAIN=\"a.test\"\n").unwrap();
        assert_eq!(raw.port("EMAIL_SMTP_PORT").unwrap(), 2525);
        assert_eq!(raw.string("EMAIL_DOMAIN"), "a.test");
        let raw = RawConfig::parse(p, "EMAIL_SMTP_PORT=25\nEMAIL_IMAP_PORT=99999\n").unwrap();
        let e = raw.port("EMAIL_IMAP_PORT").unwrap_err().to_string();
        assert!(
            e.starts_with("/x/scorpiox-env.txt:2: EMAIL_IMAP_PORT:"),
            "{e}"
        );
        let e = RawConfig::parse(p, "A=1\njunk line\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/x/scorpiox-env.txt:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_warning() {
        let raw = RawConfig::parse(Path::new("f"), "NOPE_KEY=1\n").unwrap();
        assert_eq!(raw.warnings.len(), 1);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("x"), None);
    }
}
