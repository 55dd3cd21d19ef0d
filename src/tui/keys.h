/* keys.h - key codes and handler flags of the workbench, independent of curses.
 *
 * The terminal layer (term.c) translates its input into these codes, so every piece of key
 * handling is plain C that a test drives with scripted keys. Printable keys are their Unicode
 * code point; special keys sit above the Unicode range.
 */
#ifndef SW_TUI_KEYS_H
#define SW_TUI_KEYS_H

enum {
    SW_KEY_NONE = -1, /* no key within the timeout */
    SW_KEY_TAB = '\t',
    SW_KEY_ENTER = '\n',
    SW_KEY_CTRL_L = 12,
    SW_KEY_CTRL_U = 21,
    SW_KEY_ESC = 27,
    SW_KEY_BACKSPACE = 127,
    SW_KEY_SPECIAL = 0x110000, /* first code above Unicode */
    SW_KEY_UP = SW_KEY_SPECIAL,
    SW_KEY_DOWN,
    SW_KEY_LEFT,
    SW_KEY_RIGHT,
    SW_KEY_PGUP,
    SW_KEY_PGDN,
    SW_KEY_HOME,
    SW_KEY_END,
    SW_KEY_DELETE,
    SW_KEY_BTAB,   /* shift-tab */
    SW_KEY_RESIZE, /* the terminal changed size */
};

/* What handling a key did, htop-style: the screen manager redraws or quits on these. */
typedef enum sw_tui_flags {
    SW_TUI_IGNORED = 0,
    SW_TUI_HANDLED = 1 << 0,
    SW_TUI_REDRAW = 1 << 1,
    SW_TUI_QUIT = 1 << 2,
    SW_TUI_ACTION = 1 << 3, /* an action for the application is pending (sw_tui_action) */
} sw_tui_flags;

#endif
