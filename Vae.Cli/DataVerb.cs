using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae data fetch|info</c>.</summary>
static class DataVerb
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0) throw new UsageException("data: expected 'fetch' or 'info'");
        var a = new Arguments("data " + args[0], args[1..], ["cache", "frey-face"], ["offline"]);
        var options = new DataSetOptions
        {
            CacheDirectory = a.String("cache"),
            FreyFaceSource = a.String("frey-face"),
            AllowDownload = !a.Has("offline"),
            Progress = new ConsoleDownloadProgress(stderr),
            Log = line => stderr.WriteLine(line),
        };
        switch (args[0])
        {
            case "fetch":
                a.AtMostPositional(1, "data fetch");
                if (a.Positional.Count == 0) throw new UsageException("data fetch: expected mnist|frey-face");
                string name = a.Positional[0];
                if (!DataSets.Known.Contains(name))
                    throw new UsageException($"data fetch: unknown data set '{name}' (expected mnist|frey-face)");
                string dir = DataSets.Fetch(name, options);
                stdout.WriteLine($"{name}: cached in {dir}");
                return VaeCommand.Ok;
            case "info":
                a.AtMostPositional(0, "data info");
                stdout.WriteLine($"cache: {DataSets.CacheDirectory(options)}");
                foreach (var f in DataSets.Info(options))
                {
                    string state = !f.Present ? "missing" : f.Valid ? "ok" : $"CHECKSUM MISMATCH (expected {f.ExpectedSha256})";
                    stdout.WriteLine($"{f.DataSet,-10} {System.IO.Path.GetFileName(f.Path),-26} {f.Bytes,10} {f.Sha256 ?? "-",-64} {state}");
                }
                return VaeCommand.Ok;
            default:
                throw new UsageException($"data: unknown sub-command '{args[0]}' (expected fetch or info)");
        }
    }
}

/// <summary>Download progress drawn on one terminal line.</summary>
sealed class ConsoleDownloadProgress(TextWriter writer) : IProgress<DownloadProgressInfo>
{
    long _lastShown = -1;

    public void Report(DownloadProgressInfo p)
    {
        // Redraw at most every 256 KiB, and at the end.
        if (p.Received - _lastShown < 256 * 1024 && p.Received != p.Total) return;
        _lastShown = p.Received;
        string total = p.Total is long t ? $" / {t / 1024.0 / 1024.0:F1} MiB ({100.0 * p.Received / t:F0}%)" : "";
        writer.Write($"\r{p.File}: {p.Received / 1024.0 / 1024.0:F1} MiB{total}   ");
        if (p.Received == p.Total) writer.WriteLine();
    }
}
