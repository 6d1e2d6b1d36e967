//! `sx server-email --tui`: a live dashboard of the running server (processes,
//! connections, queue, counters), the queue (browse, show, flush, hold,
//! remove), the accounts (add, remove, reset password) and recent log lines.
//! Runs as the admin, talks to the server over the control socket only.

mod app;
mod view;

use crate::exit;
use app::App;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use sxproc::config::ServerConfig;

pub fn run(cfg: ServerConfig) -> i32 {
    // Say why before taking over the screen when the server can't be reached.
    if let Err((code, msg)) =
        crate::admin::control::request(&cfg, &ipc::messages::ControlRequest::Status, &[])
    {
        eprintln!("sx server-email: {msg}");
        return code;
    }
    let mut app = App::new(cfg);
    app.refresh(true);
    let mut term = ratatui::init();
    let res = (|| -> std::io::Result<()> {
        while !app.quit {
            term.draw(|f| view::draw(f, &app))?;
            if event::poll(app::REFRESH)? {
                if let Event::Key(k) = event::read()? {
                    if k.kind == KeyEventKind::Press {
                        app.key(k);
                    }
                }
            }
            app.refresh(false);
        }
        Ok(())
    })();
    ratatui::restore();
    match res {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("sx server-email: terminal: {e}");
            exit::IOERR
        }
    }
}
