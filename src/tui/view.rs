//! Drawing the TUI with ratatui: a header with the server's pid and uptime, tabs,
//! the tab's body, and a footer with the keys and the last result. Laid out to
//! fit 80x24.

use super::app::{App, Mode, Tab};
use ipc::messages::{Event, Service};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Tabs, Wrap};
use ratatui::Frame;

pub fn draw(f: &mut Frame, app: &App) {
    let [head, tabs, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let title = match &app.status {
        Some(s) => format!(
            " scorpiox-email  pid {}  up {}  restarts {}",
            s.pid,
            uptime(s.uptime_secs),
            s.restarts
        ),
        None => " scorpiox-email  (server not reachable)".to_string(),
    };
    f.render_widget(Paragraph::new(title).reversed(), head);
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    f.render_widget(
        Tabs::new(Tab::ALL.iter().map(|t| t.title()))
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        tabs,
    );
    match app.tab {
        Tab::Overview => overview(f, app, body),
        Tab::Queue => queue(f, app, body),
        Tab::Accounts => accounts(f, app, body),
        Tab::Log => log(f, app, body),
    }
    let keys = match app.tab {
        Tab::Queue => "Enter show  f flush  F flush all  h hold/release  d remove  ? help  q quit",
        Tab::Accounts => "a add  d remove  p reset password  ? help  q quit",
        _ => "1-4/Tab switch  r refresh  ? help  q quit",
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::from(keys).dim(),
            Line::from(app.message.as_str()),
        ]),
        foot,
    );
    match &app.mode {
        Mode::Normal => {}
        Mode::Help => popup(f, "Keys (any key closes)", HELP),
        Mode::Detail(t) => popup(f, "Queued message (any key closes)", t),
        Mode::Confirm(q, _) => popup(f, "Confirm", q),
        Mode::Input(prompt, text, hidden, _) => {
            let shown = if *hidden {
                "*".repeat(text.chars().count())
            } else {
                text.clone()
            };
            popup(
                f,
                "Enter to accept, Esc to cancel",
                &format!("{prompt}{shown}_"),
            )
        }
    }
}

const HELP: &str = "\
1 2 3 4, Tab, Left/Right   switch tab
Up/Down, k/j               select
r                          refresh now (every second anyway)
q, Esc, Ctrl-C             quit

Queue:    Enter show the message, f flush it, F flush all,
          h hold or release it, d remove it (no bounce)
Accounts: a add, d remove (mail is kept), p reset password";

fn uptime(s: u64) -> String {
    format!(
        "{}d {:02}:{:02}:{:02}",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

fn overview(f: &mut Frame, app: &App, area: Rect) {
    let Some(s) = &app.status else {
        f.render_widget(
            Paragraph::new("No answer from the control socket.").block(Block::bordered()),
            area,
        );
        return;
    };
    let mut lines = vec![Line::from("Processes").bold()];
    for (role, pid) in &s.children {
        lines.push(Line::from(format!("  {:<14} pid {pid}", role.title())));
    }
    lines.push(Line::from(format!(
        "Connections  smtp {}  submission {}  submissions {}  imaps {}  imap {}",
        s.stats.connections_of(Service::Smtp),
        s.stats.connections_of(Service::Submission),
        s.stats.connections_of(Service::Submissions),
        s.stats.connections_of(Service::Imaps),
        s.stats.connections_of(Service::Imap)
    )));
    lines.push(Line::from(format!(
        "Queue        {} message(s), {} held",
        s.stats.gauge("queue_messages"),
        s.stats.gauge("queue_held")
    )));
    lines.push(Line::from(""));
    lines.push(
        Line::from(format!(
            "{:<16}{:>12}{:>14}",
            "", "last minute", "since start"
        ))
        .bold(),
    );
    for e in Event::ALL {
        let (t, m) = s.stats.event(e);
        lines.push(Line::from(format!("  {:<14}{m:>12}{t:>14}", e.name())));
    }
    f.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
}

fn queue(f: &mut Frame, app: &App, area: Rect) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let items: Vec<ListItem> = app
        .queue
        .iter()
        .map(|e| {
            let age = now.saturating_sub(e.arrived);
            let rcpts: Vec<&str> = e.recipients.iter().map(|(r, _)| r.as_str()).collect();
            let state = if e.held {
                "HELD".to_string()
            } else {
                e.recipients
                    .first()
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default()
            };
            let mut lines = vec![Line::from(vec![
                Span::raw(format!("{} ", e.id)),
                Span::raw(format!("{:>5}m {:>8} ", age / 60, e.size)),
                if e.held {
                    Span::raw(state).bold()
                } else {
                    Span::raw(state)
                },
            ])];
            lines.push(Line::from(format!("  <{}> -> {}", e.from, rcpts.join(", "))).dim());
            if let Some(err) = &e.last_error {
                lines.push(Line::from(format!("  {err}")).dim());
            }
            ListItem::new(lines)
        })
        .collect();
    let title = format!(" {} message(s) ", app.queue.len());
    if items.is_empty() {
        f.render_widget(
            Paragraph::new("The queue is empty.").block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    selectable(f, area, items, title, app.sel_queue);
}

/// A bordered list with the selected row marked.
fn selectable(f: &mut Frame, area: Rect, items: Vec<ListItem>, title: String, sel: usize) {
    let mut state = ListState::default();
    if !items.is_empty() {
        state.select(Some(sel));
    }
    f.render_stateful_widget(
        List::new(items)
            .block(Block::bordered().title(title))
            .highlight_symbol("> ")
            .highlight_style(Style::new().reversed()),
        area,
        &mut state,
    );
}

fn accounts(f: &mut Frame, app: &App, area: Rect) {
    let items: Vec<ListItem> = app
        .accounts
        .iter()
        .map(|a| ListItem::new(a.as_str()))
        .collect();
    let title = format!(" {} account(s) ", app.accounts.len());
    selectable(f, area, items, title, app.sel_account);
}

fn log(f: &mut Frame, app: &App, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    // Wrapped, not cut at the edge (a log line is often 150 columns); the
    // newest rows that fit, at the bottom.
    let mut rows: Vec<String> = Vec::new();
    for l in app.log.iter().rev() {
        let mut wrapped = wrap(l, width);
        wrapped.reverse();
        rows.extend(wrapped);
        if rows.len() >= height {
            break;
        }
    }
    rows.truncate(height);
    rows.reverse();
    let lines: Vec<Line> = rows.into_iter().map(Line::from).collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" recent mail log ")),
        area,
    );
}

/// `line` in rows of at most `width` characters, the rows after the first
/// indented by two.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if width < 4 || chars.len() <= width {
        return vec![line.to_string()];
    }
    let mut out = vec![chars[..width].iter().collect::<String>()];
    for chunk in chars[width..].chunks(width - 2) {
        out.push(format!("  {}", chunk.iter().collect::<String>()));
    }
    out
}

fn popup(f: &mut Frame, title: &str, text: &str) {
    let a = f.area();
    let w = a.width.saturating_sub(8).min(76);
    let h = (text.lines().count() as u16 + 2).clamp(3, a.height.saturating_sub(4));
    let r = Rect {
        x: a.x + (a.width - w) / 2,
        y: a.y + (a.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text.to_string())
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(title.to_string())),
        r,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_log_lines_wrap() {
        let line = "x".repeat(25);
        let w = super::wrap(&line, 10);
        assert_eq!(w, ["xxxxxxxxxx", "  xxxxxxxx", "  xxxxxxx"]);
        assert_eq!(w.iter().map(|r| r.trim().len()).sum::<usize>(), 25);
        assert_eq!(super::wrap("short", 10), ["short"]);
    }
}
