package daemon

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// CheckExposition parses a text exposition (format 0.0.4) strictly and
// returns its number of samples, or the first problem with its line
// number. Beyond the format's grammar (metric and label names, quoted
// label values with their three escapes, float values) it holds the
// exposition to the rules a scraper relies on: every sample belongs to a
// family announced by one TYPE line (and at most one HELP line) before
// it; a family's samples are contiguous; no series appears twice;
// counters are named *_total; a histogram's series each have buckets with
// increasing le bounds and non-decreasing counts, ending at le="+Inf"
// equal to its _count, and a _sum. rfcctl demo and the tests use it on
// scrapes of /metrics.
func CheckExposition(text []byte) (int, error) {
	c := expoChecker{types: map[string]string{}, helps: map[string]bool{}, done: map[string]bool{},
		series: map[string]bool{}, hists: map[string]*histSeries{}}
	lines := strings.Split(string(text), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "" {
		return 0, errors.New("exposition does not end with a newline")
	}
	for i, line := range lines[:len(lines)-1] {
		if err := c.line(line); err != nil {
			return c.samples, errors.New("line " + strconv.Itoa(i+1) + ": " + err.Error() + ": " + strconv.Quote(line))
		}
	}
	if err := c.endFamily(); err != nil {
		return c.samples, err
	}
	return c.samples, nil
}

// histSeries is the state of one histogram series (labels without le).
type histSeries struct {
	lastLe    float64
	lastCount float64
	buckets   int
	inf       float64
	hasInf    bool
	count     float64
	hasCount  bool
	hasSum    bool
}

type expoChecker struct {
	types   map[string]string // family -> type
	helps   map[string]bool
	done    map[string]bool // families whose samples have ended
	cur     string          // family of the samples being read
	series  map[string]bool // name{labels} seen
	hists   map[string]*histSeries
	samples int
}

func (c *expoChecker) line(line string) error {
	if line == "" {
		return errors.New("empty line")
	}
	if strings.HasPrefix(line, "#") {
		return c.comment(line)
	}
	return c.sample(line)
}

func (c *expoChecker) comment(line string) error {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 3 || f[0] != "#" || (f[1] != "HELP" && f[1] != "TYPE") {
		return errors.New("a comment other than HELP or TYPE")
	}
	name := f[2]
	if !validMetricName(name) {
		return errors.New("bad metric name")
	}
	if c.done[name] || (c.cur != "" && c.cur != name) {
		if err := c.endFamily(); err != nil {
			return err
		}
		if c.done[name] {
			return errors.New("family " + name + " announced after its samples")
		}
	}
	if f[1] == "HELP" {
		if c.helps[name] {
			return errors.New("second HELP")
		}
		if len(f) != 4 {
			return errors.New("HELP without text")
		}
		c.helps[name] = true
		return nil
	}
	if _, ok := c.types[name]; ok {
		return errors.New("second TYPE")
	}
	if len(f) != 4 {
		return errors.New("TYPE without a type")
	}
	switch f[3] {
	case "counter":
		if !strings.HasSuffix(name, "_total") {
			return errors.New("counter not named *_total")
		}
	case "gauge", "histogram", "summary", "untyped":
	default:
		return errors.New("unknown type " + f[3])
	}
	c.types[name] = f[3]
	c.cur = name
	return nil
}

// endFamily closes the current family: every histogram series of it must
// be complete.
func (c *expoChecker) endFamily() error {
	if c.cur == "" {
		return nil
	}
	if c.types[c.cur] == "histogram" {
		for key, h := range c.hists {
			if !strings.HasPrefix(key, c.cur+"{") && key != c.cur {
				continue
			}
			switch {
			case !h.hasInf:
				return errors.New(key + `: no le="+Inf" bucket`)
			case !h.hasCount || h.count != h.inf:
				return errors.New(key + `: _count missing or not equal to the le="+Inf" bucket`)
			case !h.hasSum:
				return errors.New(key + ": no _sum")
			}
			delete(c.hists, key)
		}
	}
	c.done[c.cur] = true
	c.cur = ""
	return nil
}

func (c *expoChecker) sample(line string) error {
	name, rest := line, ""
	if i := strings.IndexAny(line, "{ "); i >= 0 {
		name, rest = line[:i], line[i:]
	}
	if !validMetricName(name) {
		return errors.New("bad metric name")
	}
	var labels [][2]string
	if strings.HasPrefix(rest, "{") {
		var err error
		if labels, rest, err = parseLabels(rest[1:]); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(rest, " ") {
		return errors.New("no value")
	}
	f := strings.Split(rest[1:], " ")
	if len(f) > 2 || f[0] == "" {
		return errors.New("bad value field")
	}
	v, err := parseExpoFloat(f[0])
	if err != nil {
		return err
	}
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return errors.New("bad timestamp")
		}
	}
	family, suffix := c.familyOf(name)
	if family == "" {
		return errors.New("sample without a TYPE line")
	}
	if family != c.cur {
		return errors.New("samples of family " + family + " are not contiguous")
	}
	var key strings.Builder
	key.WriteString(name)
	var le string
	hasLe := false
	for _, l := range labels {
		if l[0] == "le" && c.types[family] == "histogram" {
			le, hasLe = l[1], true
			continue
		}
		key.WriteString("," + l[0] + "=" + strconv.Quote(l[1]))
	}
	full := key.String() + ",le=" + le
	if c.series[full] {
		return errors.New("series repeated")
	}
	c.series[full] = true
	c.samples++
	if c.types[family] != "histogram" {
		if hasLe {
			return errors.New("le label outside a histogram")
		}
		if c.types[family] == "counter" && (v < 0 || math.IsNaN(v)) {
			return errors.New("negative counter")
		}
		return nil
	}
	hkey := family + "{" + strings.TrimPrefix(key.String(), name) + "}"
	h := c.hists[hkey]
	if h == nil {
		h = &histSeries{lastLe: math.Inf(-1)}
		c.hists[hkey] = h
	}
	switch suffix {
	case "_bucket":
		if !hasLe {
			return errors.New("bucket without le")
		}
		b, err := parseExpoFloat(le)
		if err != nil {
			return errors.New("bad le")
		}
		if h.hasInf || b <= h.lastLe {
			return errors.New("le bounds not increasing")
		}
		if v < h.lastCount {
			return errors.New("bucket counts not cumulative")
		}
		h.lastLe, h.lastCount = b, v
		h.buckets++
		if math.IsInf(b, 1) {
			h.hasInf, h.inf = true, v
		}
	case "_count":
		if hasLe {
			return errors.New("le on _count")
		}
		h.hasCount, h.count = true, v
	case "_sum":
		if hasLe {
			return errors.New("le on _sum")
		}
		h.hasSum = true
	default:
		return errors.New("histogram sample not _bucket, _sum or _count")
	}
	return nil
}

// familyOf returns the family a sample name belongs to and, for a
// histogram, the suffix.
func (c *expoChecker) familyOf(name string) (family, suffix string) {
	if _, ok := c.types[name]; ok && c.types[name] != "histogram" && c.types[name] != "summary" {
		return name, ""
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, s); ok {
			if t := c.types[base]; t == "histogram" || (t == "summary" && s != "_bucket") {
				return base, s
			}
		}
	}
	return "", ""
}

// parseLabels parses `name="value",...}` and returns the rest after '}'.
func parseLabels(s string) ([][2]string, string, error) {
	var out [][2]string
	seen := map[string]bool{}
	for {
		if strings.HasPrefix(s, "}") {
			return out, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, "", errors.New("bad label")
		}
		name := s[:eq]
		if !validLabelName(name) || seen[name] {
			return nil, "", errors.New("bad or repeated label name " + strconv.Quote(name))
		}
		seen[name] = true
		s = s[eq+1:]
		if !strings.HasPrefix(s, `"`) {
			return nil, "", errors.New("label value not quoted")
		}
		var val strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				if i+1 >= len(s) {
					return nil, "", errors.New("bad escape")
				}
				switch s[i+1] {
				case '\\':
					val.WriteByte('\\')
				case '"':
					val.WriteByte('"')
				case 'n':
					val.WriteByte('\n')
				default:
					return nil, "", errors.New("bad escape")
				}
				i++
				continue
			}
			if s[i] == '\n' {
				return nil, "", errors.New("newline in a label value")
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, "", errors.New("unterminated label value")
		}
		out = append(out, [2]string{name, val.String()})
		s = s[i+1:]
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
			if strings.HasPrefix(s, "}") {
				return out, s[1:], nil // a trailing comma is allowed
			}
		case strings.HasPrefix(s, "}"):
		default:
			return nil, "", errors.New("labels not separated by commas")
		}
	}
}

func parseExpoFloat(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	if strings.ContainsAny(s, "_xXpP") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "infinity") {
		return 0, errors.New("bad value " + s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("bad value " + s)
	}
	return v, nil
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '_' || ch == ':' || (ch|0x20 >= 'a' && ch|0x20 <= 'z') || (i > 0 && ch >= '0' && ch <= '9') {
			continue
		}
		return false
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '_' || (ch|0x20 >= 'a' && ch|0x20 <= 'z') || (i > 0 && ch >= '0' && ch <= '9') {
			continue
		}
		return false
	}
	return true
}
