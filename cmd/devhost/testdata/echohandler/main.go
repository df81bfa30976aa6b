// Command echohandler is a custom handler for devhost's tests. It appends
// every invocation it receives (path, headers, raw body) as one JSON line to
// the file named by ECHO_LOG, and answers by function name:
//
//	Fail*   500, so that the host retries and poisons
//	Crash*  exits with status 3 without answering (the host restarts it)
//	Echo*   an http response whose body is the request's Body, and Logs
//	Slow*   like other, after one second
//	other   {"Outputs":{},"Logs":["echo {name}"],"ReturnValue":null}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

var mu sync.Mutex

func record(r *http.Request, body []byte) {
	path := os.Getenv("ECHO_LOG")
	if path == "" {
		return
	}
	line, _ := json.Marshal(map[string]any{"path": r.URL.Path, "headers": r.Header, "body": string(body)})
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echohandler:", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{fn}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		record(r, body)
		fn := r.PathValue("fn")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(fn, "Fail"):
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["failing on purpose"]}`)
		case strings.HasPrefix(fn, "Crash"):
			os.Exit(3)
		case strings.HasPrefix(fn, "Slow"):
			time.Sleep(time.Second)
			_, _ = fmt.Fprintf(w, `{"Outputs":{"res":{"statusCode":200,"body":"slow done"}},"Logs":[],"ReturnValue":null}`)
		case strings.HasPrefix(fn, "Echo"):
			var req struct {
				Data map[string]struct {
					Body string `json:"Body"`
				} `json:"Data"`
			}
			_ = json.Unmarshal(body, &req)
			out, _ := json.Marshal(map[string]any{
				"Outputs": map[string]any{"res": map[string]any{"statusCode": "200", "headers": map[string]string{"X-Echo": "1"}, "body": req.Data["req"].Body}},
				"Logs":    []string{"echo " + fn},
			})
			_, _ = w.Write(out)
		default:
			_, _ = fmt.Fprintf(w, `{"Outputs":{},"Logs":["echo %s"],"ReturnValue":null}`, fn)
		}
	})
	fmt.Println(`{"msg":"echohandler listening","port":"` + port + `"}`)
	fmt.Fprintln(os.Stderr, "echohandler stderr line")
	if err := http.ListenAndServe("127.0.0.1:"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, "echohandler:", err)
		os.Exit(1)
	}
}
