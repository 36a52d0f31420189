package spec

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Flags holds the command-line flags that give or override spec keys, one
// per key (`--base-image`, `--env K=V` repeatable, `--entrypoint '[...]'`).
type Flags struct {
	fs      *pflag.FlagSet
	context *string
	str     map[string]*string
	arrays  map[string]*[]string
	bools   map[string]*bool
}

// AddFlags registers a flag for every spec key on fs.
func AddFlags(fs *pflag.FlagSet) *Flags {
	fl := &Flags{fs: fs, str: map[string]*string{}, arrays: map[string]*[]string{}, bools: map[string]*bool{}}
	for _, f := range fields {
		name := flagName(f.key)
		switch f.kind {
		case kindString:
			fl.str[f.key] = fs.String(name, "", f.doc)
		case kindArgv:
			fl.str[f.key] = fs.String(name, "", f.doc)
		case kindList:
			fl.arrays[f.key] = fs.StringArray(name, nil, f.doc+" (repeatable)")
		case kindMap:
			fl.arrays[f.key] = fs.StringArray(name, nil, f.doc+" (repeatable)")
		case kindCopy:
			fl.arrays[f.key] = fs.StringArray(name, nil, f.doc+" (repeatable)")
		case kindBool:
			fl.bools[f.key] = fs.Bool(name, false, f.doc)
		}
	}
	for alias, canon := range aliases {
		fs.String(flagName(alias), "", "alias of --"+flagName(canon))
	}
	fl.context = fs.String("context", "", "the build context: every host file the image takes must lie in DIR (default: the spec file's directory, or the current directory without one)")
	return fl
}

// Apply overlays the flags that were set on s. Relative paths given as flags
// are resolved against cwd. Map flags (env, labels) merge over the spec's
// values; every other flag replaces the key's value.
func (fl *Flags) Apply(s *Spec, cwd string) error {
	if fl.fs.Changed("context") {
		if *fl.context == "" {
			return &Error{Pos: Pos{Flag: "context"}, Key: "context", Msg: "is empty", Hint: "name a directory, e.g. --context ."}
		}
		s.Context = *fl.context
		if !filepath.IsAbs(s.Context) {
			s.Context = filepath.Join(cwd, s.Context)
		}
		s.Context = filepath.Clean(s.Context)
	}
	for alias, canon := range aliases {
		af := fl.fs.Lookup(flagName(alias))
		if af == nil || !af.Changed {
			continue
		}
		if fl.fs.Changed(flagName(canon)) {
			return &Error{Pos: Pos{Flag: flagName(alias)}, Key: alias, Msg: "given together with --" + flagName(canon), Hint: "give only one of them"}
		}
		if err := fl.fs.Set(flagName(canon), af.Value.String()); err != nil {
			return err
		}
	}
	for i := range fields {
		f := &fields[i]
		name := flagName(f.key)
		if !fl.fs.Changed(name) {
			continue
		}
		pos := Pos{Flag: name}
		s.setPos(f.key, pos)
		if f.kind != kindMap {
			s.clearEntryPos(f.key) // the file's entries are replaced
		}
		switch f.kind {
		case kindString:
			v := *fl.str[f.key]
			if f.path && v != "" && !filepath.IsAbs(v) {
				v = filepath.Join(cwd, v)
			}
			*f.str(s) = v
		case kindArgv:
			var argv []string
			if err := json.Unmarshal([]byte(*fl.str[f.key]), &argv); err != nil {
				return &Error{Pos: pos, Key: f.key, Msg: "must be a JSON list of strings", Hint: fmt.Sprintf(`write --%s '["python3","/root/main.py"]'`, name)}
			}
			if argv == nil {
				argv = []string{}
			}
			*f.list(s) = argv
		case kindList:
			*f.list(s) = append([]string{}, *fl.arrays[f.key]...)
		case kindMap:
			kvs := *f.kv(s)
			for _, a := range *fl.arrays[f.key] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return &Error{Pos: pos, Key: f.key, Msg: fmt.Sprintf("%q is not KEY=VALUE", a), Hint: fmt.Sprintf("write --%s KEY=VALUE", name)}
				}
				kvs = setKV(kvs, k, v)
				s.setPos(f.key+"."+k, pos)
			}
			*f.kv(s) = kvs
		case kindBool:
			*f.flag(s) = *fl.bools[f.key]
		case kindCopy:
			var cs []Copy
			for _, a := range *fl.arrays[f.key] {
				src, dest, ok := strings.Cut(a, ":")
				if !ok || src == "" || dest == "" {
					return &Error{Pos: pos, Key: f.key, Msg: fmt.Sprintf("%q is not SRC:DEST", a), Hint: "write --copy src/path:/dest/path"}
				}
				if !filepath.IsAbs(src) {
					src = filepath.Join(cwd, src)
				}
				cs = append(cs, Copy{Src: src, Dest: dest})
			}
			*f.copy(s) = cs
		}
	}
	return nil
}
