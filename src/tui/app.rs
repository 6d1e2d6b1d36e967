//! The TUI's state and what each key does. Everything it shows or changes goes
//! through the control socket (status, queue) or the same account functions as
//! the CLI, so the TUI can do nothing the admin commands can't.

use crate::admin::{accounts, control};
use ipc::messages::{ControlReply, ControlRequest, QueueCmd, QueueEntry, QueueReply, Status};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::{Duration, Instant};
use sxproc::config::ServerConfig;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Queue,
    Accounts,
    Log,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Overview, Tab::Queue, Tab::Accounts, Tab::Log];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "1 Overview",
            Tab::Queue => "2 Queue",
            Tab::Accounts => "3 Accounts",
            Tab::Log => "4 Log",
        }
    }
}

/// What a confirmed prompt does.
#[derive(Clone)]
pub enum Confirmed {
    RemoveQueued(String),
    RemoveAccount(String),
}

/// What typed input is for.
#[derive(Clone)]
pub enum Typed {
    NewAddress,
    NewPassword(String),
    ResetPassword(String),
}

pub enum Mode {
    Normal,
    Help,
    /// A yes/no question.
    Confirm(String, Confirmed),
    /// A line being typed: prompt, text so far, hidden (passwords), purpose.
    Input(String, String, bool, Typed),
    /// Text to read (a queued message's envelope and headers).
    Detail(String),
}

pub struct App {
    pub cfg: ServerConfig,
    pub tab: Tab,
    pub mode: Mode,
    pub status: Option<Status>,
    pub queue: Vec<QueueEntry>,
    pub accounts: Vec<String>,
    pub log: Vec<String>,
    pub sel_queue: usize,
    pub sel_account: usize,
    /// The last action's result, shown at the bottom.
    pub message: String,
    pub quit: bool,
    last_refresh: Option<Instant>,
}

/// How often the figures are fetched again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// Log lines kept for the Log tab.
const LOG_LINES: usize = 200;

impl App {
    pub fn new(cfg: ServerConfig) -> App {
        App {
            cfg,
            tab: Tab::Overview,
            mode: Mode::Normal,
            status: None,
            queue: Vec::new(),
            accounts: Vec::new(),
            log: Vec::new(),
            sel_queue: 0,
            sel_account: 0,
            message: String::from("? for help"),
            quit: false,
            last_refresh: None,
        }
    }

    fn ask(&self, req: ControlRequest) -> Result<ControlReply, String> {
        control::request(&self.cfg, &req, &[]).map_err(|(_, m)| m)
    }

    /// Fetch status, queue, accounts and log lines when due (or `force`).
    pub fn refresh(&mut self, force: bool) {
        if !force && self.last_refresh.is_some_and(|t| t.elapsed() < REFRESH) {
            return;
        }
        self.last_refresh = Some(Instant::now());
        match self.ask(ControlRequest::Status) {
            Ok(ControlReply::Status(s)) => self.status = Some(s),
            Ok(_) => {}
            Err(e) => {
                self.status = None;
                self.message = e;
            }
        }
        if let Ok(ControlReply::Queue(QueueReply::List(mut l))) =
            self.ask(ControlRequest::Queue(QueueCmd::List))
        {
            l.sort_by(|a, b| a.arrived.cmp(&b.arrived).then(a.id.cmp(&b.id)));
            self.queue = l;
        }
        if let Ok(l) = accounts::load(&self.cfg) {
            self.accounts = l.into_iter().map(|a| a.address).collect();
        }
        // journalctl is a process to start: only while its lines are on screen.
        if self.tab == Tab::Log {
            self.log = recent_log(&self.cfg, LOG_LINES);
        }
        self.sel_queue = self.sel_queue.min(self.queue.len().saturating_sub(1));
        self.sel_account = self.sel_account.min(self.accounts.len().saturating_sub(1));
    }

    fn selected_queued(&self) -> Option<String> {
        self.queue.get(self.sel_queue).map(|e| e.id.clone())
    }

    fn selected_account(&self) -> Option<String> {
        self.accounts.get(self.sel_account).cloned()
    }

    fn queue_cmd(&mut self, cmd: QueueCmd) {
        self.message = match self.ask(ControlRequest::Queue(cmd)) {
            Ok(ControlReply::Queue(QueueReply::Done(t))) => t,
            Ok(ControlReply::Queue(QueueReply::Show(t))) => {
                self.mode = Mode::Detail(t);
                String::new()
            }
            Ok(ControlReply::Queue(QueueReply::Error(e))) | Ok(ControlReply::Error(e)) => {
                format!("error: {e}")
            }
            Ok(_) => "error: unexpected answer".into(),
            Err(e) => format!("error: {e}"),
        };
        self.refresh(true);
    }

    fn account_result(&mut self, r: accounts::Outcome) {
        self.message = match r {
            Ok(m) => m,
            Err((_, e)) => format!("error: {e}"),
        };
        self.refresh(true);
    }

    pub fn key(&mut self, k: KeyEvent) {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(k.code),
            Mode::Help | Mode::Detail(_) => {}
            Mode::Confirm(q, what) => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.confirmed(what),
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.message = "cancelled".into()
                }
                _ => self.mode = Mode::Confirm(q, what),
            },
            Mode::Input(prompt, mut text, hidden, what) => match k.code {
                KeyCode::Esc => self.message = "cancelled".into(),
                KeyCode::Enter => self.typed(what, text),
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Input(prompt, text, hidden, what);
                }
                KeyCode::Char(c) if text.len() < 256 => {
                    text.push(c);
                    self.mode = Mode::Input(prompt, text, hidden, what);
                }
                _ => self.mode = Mode::Input(prompt, text, hidden, what),
            },
        }
    }

    fn normal_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(c @ '1'..='4') => {
                self.show(Tab::ALL[(c as usize) - ('1' as usize)]);
            }
            KeyCode::Tab | KeyCode::Right => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                self.show(Tab::ALL[(i + 1) % Tab::ALL.len()]);
            }
            KeyCode::BackTab | KeyCode::Left => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                self.show(Tab::ALL[(i + Tab::ALL.len() - 1) % Tab::ALL.len()]);
            }
            KeyCode::Up | KeyCode::Char('k') => self.step(-1),
            KeyCode::Down | KeyCode::Char('j') => self.step(1),
            KeyCode::Char('r') => {
                self.refresh(true);
                self.message = "refreshed".into();
            }
            _ => match self.tab {
                Tab::Queue => self.queue_key(code),
                Tab::Accounts => self.accounts_key(code),
                _ => {}
            },
        }
    }

    fn show(&mut self, tab: Tab) {
        self.tab = tab;
        if tab == Tab::Log {
            self.log = recent_log(&self.cfg, LOG_LINES);
        }
    }

    fn step(&mut self, d: isize) {
        let (sel, len) = match self.tab {
            Tab::Queue => (&mut self.sel_queue, self.queue.len()),
            Tab::Accounts => (&mut self.sel_account, self.accounts.len()),
            _ => return,
        };
        if len > 0 {
            *sel = (*sel as isize + d).clamp(0, len as isize - 1) as usize;
        }
    }

    fn queue_key(&mut self, code: KeyCode) {
        if code == KeyCode::Char('F') {
            return self.queue_cmd(QueueCmd::Flush { id: None });
        }
        let Some(id) = self.selected_queued() else {
            self.message = "the queue is empty".into();
            return;
        };
        match code {
            KeyCode::Enter => self.queue_cmd(QueueCmd::Show { id }),
            KeyCode::Char('f') => self.queue_cmd(QueueCmd::Flush { id: Some(id) }),
            KeyCode::Char('h') => {
                let held = self.queue.get(self.sel_queue).is_some_and(|e| e.held);
                if held {
                    self.queue_cmd(QueueCmd::Release { id })
                } else {
                    self.queue_cmd(QueueCmd::Hold { id })
                }
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                self.mode = Mode::Confirm(
                    format!("Remove {id} from the queue, without a bounce? (y/n)"),
                    Confirmed::RemoveQueued(id),
                )
            }
            _ => {}
        }
    }

    fn accounts_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Char('a') => {
                self.mode = Mode::Input(
                    "New account address: ".into(),
                    String::new(),
                    false,
                    Typed::NewAddress,
                )
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                if let Some(a) = self.selected_account() {
                    self.mode = Mode::Confirm(
                        format!("Remove account {a}? Its mail is kept. (y/n)"),
                        Confirmed::RemoveAccount(a),
                    )
                }
            }
            KeyCode::Char('p') => {
                if let Some(a) = self.selected_account() {
                    self.mode = Mode::Input(
                        format!("New password for {a}: "),
                        String::new(),
                        true,
                        Typed::ResetPassword(a),
                    )
                }
            }
            _ => {}
        }
    }

    fn confirmed(&mut self, what: Confirmed) {
        match what {
            Confirmed::RemoveQueued(id) => self.queue_cmd(QueueCmd::Remove { id }),
            Confirmed::RemoveAccount(a) => {
                let r = accounts::remove_with(&self.cfg, &a);
                self.account_result(r)
            }
        }
    }

    fn typed(&mut self, what: Typed, text: String) {
        match what {
            Typed::NewAddress => {
                let addr = text.trim().to_string();
                self.mode = Mode::Input(
                    format!("Password for {addr}: "),
                    String::new(),
                    true,
                    Typed::NewPassword(addr),
                );
            }
            Typed::NewPassword(addr) => match crate::password::check(text) {
                Ok(pw) => {
                    let r = accounts::add_with(&self.cfg, &addr, &pw);
                    self.account_result(r)
                }
                Err(e) => self.message = format!("error: {e}"),
            },
            Typed::ResetPassword(addr) => match crate::password::check(text) {
                Ok(pw) => {
                    let r = accounts::passwd_with(&self.cfg, &addr, &pw);
                    self.account_result(r)
                }
                Err(e) => self.message = format!("error: {e}"),
            },
        }
    }
}

/// The newest mail log lines: a server logging to stderr has them in its
/// data directory's log file (`--daemon`); else the systemd journal (facility
/// mail) when there is one, else /var/log/mail.log.
fn recent_log(cfg: &ServerConfig, n: usize) -> Vec<String> {
    let own = cfg.data_dir.join("sx-server-email.log");
    if cfg.log != ipc::messages::LogTarget::Syslog && own.is_file() {
        return tail(&own.to_string_lossy(), n);
    }
    let journal = std::path::Path::new("/run/systemd/journal").exists();
    if journal {
        if let Ok(o) = std::process::Command::new("journalctl")
            .args(["--no-pager", "-q", "-o", "short", "SYSLOG_FACILITY=2", "-n"])
            .arg(n.to_string())
            .stderr(std::process::Stdio::null())
            .output()
        {
            if o.status.success() {
                return String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
        }
    }
    tail("/var/log/mail.log", n)
}

fn tail(path: &str, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return vec![format!(
            "no log to show: no journal and {path} is not readable (EMAIL_LOG=syslog writes there)"
        )];
    };
    // The last 64 KiB hold far more than a screen of lines.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.take(64 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
