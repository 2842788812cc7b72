package lint

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rgb is a parsed CSS colour; ok is false for none or unknown.
type rgb struct {
	r, g, b uint8
	ok      bool
}

func (c rgb) String() string { return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b) }

var namedColors = map[string]rgb{
	"black": {0, 0, 0, true}, "white": {255, 255, 255, true}, "red": {255, 0, 0, true},
	"green": {0, 128, 0, true}, "blue": {0, 0, 255, true}, "yellow": {255, 255, 0, true},
	"gray": {128, 128, 128, true}, "grey": {128, 128, 128, true}, "silver": {192, 192, 192, true},
	"navy": {0, 0, 128, true}, "maroon": {128, 0, 0, true}, "orange": {255, 165, 0, true},
	"whitesmoke": {245, 245, 245, true}, "lightgray": {211, 211, 211, true}, "lightgrey": {211, 211, 211, true},
	"darkgray": {169, 169, 169, true}, "darkgrey": {169, 169, 169, true}, "snow": {255, 250, 250, true},
	"ivory": {255, 255, 240, true}, "beige": {245, 245, 220, true},
}

// parseColor reads #rgb, #rrggbb, rgb()/rgba() and a few names.
func parseColor(s string) (rgb, bool) {
	s = strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "!important")))
	if s == "" {
		return rgb{}, false
	}
	if c, ok := namedColors[s]; ok {
		return c, true
	}
	if strings.HasPrefix(s, "#") {
		h := s[1:]
		if len(h) == 3 {
			h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
		}
		if len(h) != 6 {
			return rgb{}, false
		}
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return rgb{}, false
		}
		return rgb{uint8(v >> 16), uint8(v >> 8), uint8(v), true}, true
	}
	if strings.HasPrefix(s, "rgb(") || strings.HasPrefix(s, "rgba(") {
		in := s[strings.IndexByte(s, '(')+1:]
		in = strings.TrimSuffix(in, ")")
		f := strings.FieldsFunc(in, func(r rune) bool { return r == ',' || r == ' ' || r == '/' })
		if len(f) < 3 {
			return rgb{}, false
		}
		if len(f) >= 4 {
			if a, err := strconv.ParseFloat(strings.TrimSuffix(f[3], "%"), 64); err == nil && a < 0.5 {
				return rgb{}, false // mostly transparent: the colour behind shows
			}
		}
		var v [3]uint8
		for i := range 3 {
			n, err := strconv.ParseFloat(strings.TrimSuffix(f[i], "%"), 64)
			if err != nil {
				return rgb{}, false
			}
			if strings.HasSuffix(f[i], "%") {
				n = n * 255 / 100
			}
			v[i] = uint8(math.Max(0, math.Min(255, n)))
		}
		return rgb{v[0], v[1], v[2], true}, true
	}
	return rgb{}, false
}

// backgroundColor reads background-color, or a colour in the background
// shorthand.
func backgroundColor(st map[string]string) (rgb, bool) {
	if c, ok := parseColor(st["background-color"]); ok {
		return c, true
	}
	for _, f := range strings.Fields(st["background"]) {
		if c, ok := parseColor(f); ok {
			return c, true
		}
	}
	return rgb{}, false
}

// contrast is the WCAG contrast ratio of two colours, 1 to 21.
func contrast(a, b rgb) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(c rgb) float64 {
	ch := func(v uint8) float64 {
		x := float64(v) / 255
		if x <= 0.03928 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(c.r) + 0.7152*ch(c.g) + 0.0722*ch(c.b)
}
