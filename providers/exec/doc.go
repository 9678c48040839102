// Package exec is a provider that runs a configured command line as a
// model, the way CLI agents (aider, claude -p, codex exec, llm ...) are
// called. There is no shell: Command is the argv.
//
// The prompt is the conversation as text. A conversation of one message is
// that message's content, verbatim; a longer one is every message as
// "role: content", separated by blank lines, so a system message or an
// earlier turn is not silently dropped. An argument containing "{prompt}"
// has it replaced by the prompt (several may); when no argument does, the
// prompt is written to the command's standard input, which is otherwise
// empty.
//
// The command runs in its own process group. On Timeout, on the caller's
// context ending, on Close, and also after the command exits, the whole
// group is killed, so children it forked do not outlive the call. (A child
// that leaves the group with setsid escapes the kill; its hold on the
// output pipes is cut 1 s after the command exits.)
//
// Failures: a command that cannot start (not found, not executable, a bad
// Dir) is connection, the class of an upstream that cannot be reached; a
// non-zero exit is server_error with the last 2 KiB of standard error;
// standard output that is empty (blank) or larger than 4 MiB is malformed;
// Timeout is timeout. A stream delivers standard output line by line; it is
// complete at end of output after a zero exit, and a non-zero exit after
// some output is stream_cut. Invalid UTF-8 in the output is replaced by
// U+FFFD, since answers travel as protobuf strings.
//
// It works on Unix (process groups). It imports providers and messages
// only. A Model is safe for concurrent use; each call runs its own process.
package exec
