using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vae.Tests;

/// <summary>Debian's Chromium, headless, driven over the Chrome DevTools Protocol (a WebSocket): it opens a page,
/// records every console error, warning and uncaught exception, evaluates script in the page, moves the mouse, and
/// takes screenshots. One browser per instance, its own profile directory; disposing ends it.</summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";
    readonly Process _process;
    readonly string _profile;
    readonly ClientWebSocket _socket = new();
    readonly ConcurrentDictionary<int, TaskCompletionSource<JsonElement>> _pending = new();
    readonly ConcurrentQueue<(string Method, JsonElement Params)> _events = new();
    readonly CancellationTokenSource _stop = new();
    Task _receiver = Task.CompletedTask;
    int _nextId;

    /// <summary>Console messages of level error or warning, uncaught exceptions and log entries of level error, as text.</summary>
    public IReadOnlyList<string> Problems =>
        [.. _events.Select(e => e.Method switch
        {
            "Runtime.exceptionThrown" => "uncaught: " + e.Params.GetProperty("exceptionDetails").ToString(),
            "Runtime.consoleAPICalled" when e.Params.GetProperty("type").GetString() is "error" or "warning" or "assert" =>
                "console." + e.Params.GetProperty("type").GetString() + ": " + e.Params.GetProperty("args").ToString(),
            "Log.entryAdded" when e.Params.GetProperty("entry").GetProperty("level").GetString() is "error" or "warning" =>
                "log: " + e.Params.GetProperty("entry").GetProperty("text").GetString() + " " + e.Params.GetProperty("entry").GetProperty("url"),
            _ => null,
        }).OfType<string>()];

    HeadlessChromium(Process process, string profile) => (_process, _profile) = (process, profile);

    /// <summary>Starts Chromium on a blank page of <paramref name="width"/> x <paramref name="height"/> CSS pixels
    /// and connects to it.</summary>
    public static async Task<HeadlessChromium> StartAsync(int width = 1300, int height = 1000)
    {
        Assert.True(File.Exists(Executable), $"the browser tests need Debian's Chromium at {Executable} (apt-get install -y chromium)");
        string profile = TestEnvironment.NewTempDirectory();
        var start = new ProcessStartInfo(Executable,
        [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
            $"--window-size={width},{height}", "--remote-debugging-port=0", $"--user-data-dir={profile}", "about:blank",
        ]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var browser = new HeadlessChromium(process, profile);
        try
        {
            // Chromium writes the port it chose to DevToolsActivePort in its profile once it listens.
            string portFile = Path.Combine(profile, "DevToolsActivePort");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(File.Exists(portFile) && File.ReadAllText(portFile).Contains('\n')))
            {
                if (process.HasExited) throw new InvalidOperationException($"chromium exited with code {process.ExitCode} before it listened");
                if (DateTime.UtcNow > deadline) throw new TimeoutException("chromium did not write DevToolsActivePort within 60 s");
                await Task.Delay(50);
            }
            int port = int.Parse(File.ReadAllLines(portFile)[0]);
            using var http = new HttpClient();
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            string page = targets.First(t => (string?)t!["type"] == "page")!["webSocketDebuggerUrl"]!.GetValue<string>();
            await browser._socket.ConnectAsync(new Uri(page), CancellationToken.None);
            browser._receiver = Task.Run(browser.ReceiveAsync);
            await browser.SendAsync("Runtime.enable");
            await browser.SendAsync("Log.enable");
            await browser.SendAsync("Page.enable");
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    async Task ReceiveAsync()
    {
        var buffer = new byte[1 << 20];
        var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested && _socket.State == WebSocketState.Open)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                using var doc = JsonDocument.Parse(message.ToArray());
                message.SetLength(0);
                var root = doc.RootElement.Clone();
                if (root.TryGetProperty("id", out var id) && _pending.TryRemove(id.GetInt32(), out var waiter))
                {
                    if (root.TryGetProperty("error", out var error)) waiter.SetException(new InvalidOperationException("DevTools: " + error));
                    else waiter.SetResult(root.GetProperty("result"));
                }
                else if (root.TryGetProperty("method", out var method))
                    _events.Enqueue((method.GetString()!, root.TryGetProperty("params", out var p) ? p : default));
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException) { }
        foreach (var waiter in _pending.Values) waiter.TrySetException(new InvalidOperationException("the DevTools connection closed"));
    }

    /// <summary>Sends a DevTools command and returns its result (60 s at most).</summary>
    public async Task<JsonElement> SendAsync(string method, object? parameters = null)
    {
        int id = Interlocked.Increment(ref _nextId);
        var waiter = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiter;
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters ?? new { } });
        await _socket.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None);
        return await waiter.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Opens a local file and waits for its load event.</summary>
    public async Task OpenAsync(string path)
    {
        int before = _events.Count(e => e.Method == "Page.loadEventFired");
        await SendAsync("Page.navigate", new { url = new Uri(Path.GetFullPath(path)).AbsoluteUri });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (_events.Count(e => e.Method == "Page.loadEventFired") == before)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{path} did not load within 60 s; problems: {string.Join("; ", Problems)}");
            await Task.Delay(20);
        }
    }

    /// <summary>The value of a script expression in the page (promises awaited), as JSON; an exception in it fails.</summary>
    public async Task<JsonElement> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result.TryGetProperty("exceptionDetails", out var details)) throw new InvalidOperationException($"{expression}: {details}");
        var value = result.GetProperty("result");
        return value.TryGetProperty("value", out var v) ? v : value;
    }

    /// <summary>A left-button drag through the points (CSS pixels of the viewport): press at the first, move through
    /// the rest, release at the last.</summary>
    public async Task DragAsync(params (double X, double Y)[] points)
    {
        await Mouse("mousePressed", points[0]);
        foreach (var p in points.Skip(1)) await Mouse("mouseMoved", p);
        await Mouse("mouseReleased", points[^1]);
        Task<JsonElement> Mouse(string type, (double X, double Y) p) =>
            SendAsync("Input.dispatchMouseEvent", new { type, x = p.X, y = p.Y, button = "left", buttons = type == "mouseReleased" ? 0 : 1, clickCount = 1 });
    }

    /// <summary>A PNG of the whole page (beyond the window where it is taller).</summary>
    public async Task<byte[]> ScreenshotAsync() =>
        Convert.FromBase64String((await SendAsync("Page.captureScreenshot", new { format = "png", captureBeyondViewport = true })).GetProperty("data").GetString()!);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { if (_socket.State == WebSocketState.Open) await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None); }
        catch (WebSocketException) { }
        _socket.Dispose();
        await _receiver.ContinueWith(_ => { });
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { }
    }
}
