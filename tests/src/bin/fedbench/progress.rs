//! A progress bar on standard error: redrawn in place on a terminal, a line every tenth of
//! the way otherwise (so logs of CI runs stay short).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    total: usize,
    done: usize,
    started: Instant,
    drawn: Instant,
    tty: bool,
    last_tenth: usize,
}

const WIDTH: usize = 30;
const REDRAW: Duration = Duration::from_millis(100);

impl Progress {
    pub fn new(what: impl Into<String>, total: usize) -> Self {
        let p = Progress {
            what: what.into(),
            total: total.max(1),
            done: 0,
            started: Instant::now(),
            drawn: Instant::now() - REDRAW,
            tty: std::io::stderr().is_terminal(),
            last_tenth: 0,
        };
        p.draw();
        p
    }

    pub fn inc(&mut self) {
        self.done = (self.done + 1).min(self.total);
        let tenth = self.done * 10 / self.total;
        if self.tty && self.drawn.elapsed() >= REDRAW
            || !self.tty && tenth > self.last_tenth
            || self.done == self.total
        {
            self.last_tenth = tenth;
            self.drawn = Instant::now();
            self.draw();
        }
    }

    fn draw(&self) {
        let filled = self.done * WIDTH / self.total;
        let line = format!(
            "  [{}{}] {:>5}/{:<5} {} {:>6.1} s",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            self.what,
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}\x1b[K");
            if self.done == self.total {
                let _ = writeln!(err);
            }
        } else if self.done == 0 || self.done * 10 / self.total > 0 {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }
}
