using System.CommandLine;
using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae data fetch|info</c>.</summary>
static class DataVerb
{
    static readonly Option<bool> Offline = Opt.Flag("--offline", "use only the cache and local files; never download");
    static readonly Argument<string> Name = KnownDataSet();

    static Argument<string> KnownDataSet()
    {
        var name = new Argument<string>("name") { Description = "the data set: mnist or frey-face" };
        name.Validators.Add(r =>
        {
            string v = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
            if (!DataSets.Known.Contains(v)) r.AddError($"unknown data set '{v}' (expected mnist|frey-face)");
        });
        return name;
    }

    /// <summary><c>vae data fetch|info</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr)
    {
        var fetch = new Command("fetch", "Download (or copy) a data set into the cache and check its SHA-256 sums") { Name, Common.Cache, Common.FreyFace, Offline };
        fetch.SetAction(p =>
        {
            var a = new Arguments(p);
            string name = p.GetValue(Name)!;
            stdout.WriteLine($"{name}: cached in {DataSets.Fetch(name, Options(a, stderr))}");
            return VaeCommand.Ok;
        });
        var info = new Command("info", "List the cached files with their SHA-256 sums and whether they match") { Common.Cache };
        info.SetAction(p =>
        {
            var options = Options(new Arguments(p), stderr);
            stdout.WriteLine($"cache: {DataSets.CacheDirectory(options)}");
            foreach (var f in DataSets.Info(options))
            {
                string state = !f.Present ? "missing" : f.Valid ? "ok" : $"CHECKSUM MISMATCH (expected {f.ExpectedSha256})";
                stdout.WriteLine($"{f.DataSet,-10} {System.IO.Path.GetFileName(f.Path),-26} {f.Bytes,10} {f.Sha256 ?? "-",-64} {state}");
            }
            return VaeCommand.Ok;
        });
        return new Command("data", "The data cache: fetch a data set, or list what is cached") { fetch, info };
    }

    static DataSetOptions Options(Arguments a, TextWriter stderr) => new()
    {
        CacheDirectory = a.Get(Common.Cache),
        FreyFaceSource = a.Get(Common.FreyFace),
        AllowDownload = !a.Get(Offline),
        Progress = new ConsoleDownloadProgress(stderr),
        Log = line => stderr.WriteLine(line),
    };
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
