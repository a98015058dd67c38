// Command gomatch answers Go's path/filepath.Match for (pattern, name) pairs: the function OPA's
// bundle reader applies to signing.exclude_files (bundle.Reader.isFileExcluded, which treats an
// error as no match). Portcullis's port (src/bundle-files.ts goPathMatch) is checked against it.
//
// Input on stdin: {"pairs": [["pattern", "name"], ...]}. Output: {"answers": [{"match": bool,
// "bad_pattern": bool}, ...]} in the same order.
package main

import (
	"encoding/json"
	"os"
	"path/filepath"
)

type answer struct {
	Match      bool `json:"match"`
	BadPattern bool `json:"bad_pattern"`
}

func main() {
	var in struct {
		Pairs [][2]string `json:"pairs"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		os.Stderr.WriteString("gomatch: " + err.Error() + "\n")
		os.Exit(2)
	}
	out := struct {
		Answers []answer `json:"answers"`
	}{Answers: make([]answer, 0, len(in.Pairs))}
	for _, p := range in.Pairs {
		m, err := filepath.Match(p[0], p[1])
		out.Answers = append(out.Answers, answer{Match: m && err == nil, BadPattern: err != nil})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
