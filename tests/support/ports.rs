//! Small stand-ins for the agent's ports where a test drives the agent
//! itself: a clock the test moves, and (from the library) an SLO source
//! with no SLIs.

use std::cell::Cell;
use std::rc::Rc;

use tailor::ports::Clock;
pub use tailor::ports::NoSlis;

/// Virtual time for the agent (unix seconds), moved by the test.
#[derive(Clone, Default)]
pub struct TestClock(pub Rc<Cell<i64>>);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.get()
    }
}
