"""Source: new uploads (person rules over the look-back window, rules without people once
their metadata arrived, unread windows, fast polls)."""
