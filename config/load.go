package config

import (
	"bytes"
	_ "embed" // the default files
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

var (
	//go:embed resilience.yml
	defaultGlobalFile []byte
	//go:embed models-resilience.yml
	defaultModelsFile []byte
)

// Error is one problem in a configuration file. Load and Parse return all of
// them at once, joined with errors.Join: the global file's first, then the
// models file's, each file's sorted by line. Use errors.As to reach the first.
type Error struct {
	File string // the file's name as given to Parse (Load passes dir/name)
	Line int    // 1-based line; 0 when the problem concerns the whole file
	Key  string // key path such as "models.gpt-5.timeout"; "" when none applies
	Msg  string // what is wrong and what is allowed
	Err  error  // underlying cause, if any: fs.ErrNotExist for a missing file
}

// Error formats e as "<file>:<line>: <key path>: <message>", leaving out the
// line and the key path when they are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, fs.ErrNotExist)
// tells a missing models file apart from a bad one.
func (e *Error) Unwrap() error { return e.Err }

// Load reads dir/resilience.yml and dir/models-resilience.yml and validates
// them. The global file is optional: without it every global default applies.
// The models file is required. On any problem Load returns a nil Config and
// every problem found.
func Load(dir string) (*Config, error) {
	globalPath := filepath.Join(dir, GlobalFile)
	modelsPath := filepath.Join(dir, ModelsFile)
	globalData, err := os.ReadFile(globalPath)
	if errors.Is(err, fs.ErrNotExist) {
		globalData = nil
	} else if err != nil {
		return nil, readError(globalPath, err)
	}
	modelsData, err := os.ReadFile(modelsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: modelsPath, Msg: "file not found (pass --config-dir)", Err: err}
	} else if err != nil {
		return nil, readError(modelsPath, err)
	}
	return Parse(globalPath, globalData, modelsPath, modelsData)
}

// readError reports a file that exists but cannot be read, without repeating
// the path that os puts in its own message.
func readError(path string, err error) error {
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	return &Error{File: path, Msg: "cannot read: " + cause.Error(), Err: err}
}

// Parse is Load on contents already in memory; the names appear in error
// messages. A nil globalData means the global file is absent (all defaults);
// an empty one is an empty file, which also gives all defaults.
func Parse(globalName string, globalData []byte, modelsName string, modelsData []byte) (*Config, error) {
	c := &Config{Global: defaultGlobal(), Models: map[string]*Model{}}
	var all []*Error
	if globalData != nil {
		d := newDecoder(globalName)
		if root, ok := d.document(globalData); ok {
			d.fields(root, "", d.globalFields(&c.Global))
			d.checkGlobal(&c.Global)
		}
		all = append(all, d.sorted()...)
	}
	d := newDecoder(modelsName)
	if root, ok := d.document(modelsData); ok {
		d.modelsFile(root, c)
	}
	all = append(all, d.sorted()...)
	if len(all) > 0 {
		errs := make([]error, len(all))
		for i, e := range all {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Defaults parses the default files embedded in the binary: every global
// default and five sim models that need no API key.
func Defaults() (*Config, error) {
	return Parse(GlobalFile, defaultGlobalFile, ModelsFile, defaultModelsFile)
}

// sorted returns the decoder's errors ordered by line, keeping the order they
// were found in on the same line.
func (d *decoder) sorted() []*Error {
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
	return d.errs
}

// yamlLine matches the position yaml.v3 puts in front of a syntax error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as one YAML document and returns its root node, nil
// for an empty file. ok is false when the file is not valid YAML: the problem
// is recorded, and its keys are not worth checking.
func (d *decoder) document(data []byte) (root *yaml.Node, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, true
	} else if err != nil {
		d.syntaxError(data, err)
		return nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		d.add(next.Line, "", "a second YAML document (\"---\") is not allowed: use one document per file")
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(data, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

// syntaxError rewrites a yaml.v3 error into the file:line form. yaml.v3 leaves
// the line out for problems on line 1 and for bad characters, so those are
// located here.
func (d *decoder) syntaxError(data []byte, err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.add(line, "", "invalid YAML: %s", m[2])
		return
	}
	d.add(badCharLine(data), "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// badCharLine returns the line of the first control character or invalid
// UTF-8 in data, or 1 when there is none (yaml.v3 omits line 1 from errors).
func badCharLine(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		if !utf8.Valid(line) {
			return i + 1
		}
		for _, r := range string(line) {
			if r < 0x20 && r != '\t' && r != '\r' || r == 0x7f {
				return i + 1
			}
		}
	}
	return 1
}

// add records a problem at line (0 for the whole file) and key path.
func (d *decoder) add(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}
