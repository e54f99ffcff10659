using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Vae.Cli;
using Vae.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Vae.Bench;

/// <summary><c>Vae.Bench time-to-quality</c>: the test bound against training seconds for Vae's steps (float32, one-pass
/// float32, bfloat16 multiplies) and the PyTorch program of the same model, each alone on one thread, the paper's MNIST
/// model and settings (784-500-20, estimator B, M = 100, Adagrad 0.02, the weight prior), to 10⁷ samples. Seconds count
/// training steps only; the test bound (estimator B, one draw per image, the 10,000 test images) is measured every 10⁶
/// samples outside the clock, as the PyTorch program does.</summary>
static class TimeToQuality
{
    static readonly Option<long> Samples = Opt.Integer("--samples", "training samples per run", 10_000_000, 100, long.MaxValue);
    static readonly Option<long> Every = Opt.Integer("--eval-every", "samples between test bounds", 1_000_000, 100, long.MaxValue);
    static readonly Option<string> Out = Opt.Text("--out", "the directory for one CSV per run and time-to-quality.png (default: time-to-quality)", "DIR");
    static readonly Option<bool> Replot = Opt.Flag("--replot", "train nothing: redraw time-to-quality.png from the CSVs already in --out");
    static readonly Option<string> Only = Opt.Text("--only", "comma-separated runs of float32, one-pass, bf16, pytorch, pytorch-bf16 (default: all this machine can run)", "LIST");

    public static Command Command(TextWriter stdout, TextWriter stderr)
    {
        var command = new Command("time-to-quality", "The test bound against training seconds: Vae's steps and PyTorch's, one thread each, to 10^7 samples")
            { Samples, Every, Out, Only, Replot, Common.Cache };
        command.SetAction(p => Run(new Arguments(p), stdout, stderr));
        return command;
    }

    static readonly string[] All = ["float32", "one-pass", "bf16", "pytorch", "pytorch-bf16"];

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr)
    {
        long samples = a.Get(Samples), every = a.Get(Every);
        string directory = Path.GetFullPath(a.Get(Out) ?? "time-to-quality");
        var only = a.Get(Only) is { } list ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : All;
        if (only.FirstOrDefault(o => !All.Contains(o)) is { } unknown) throw new UsageException($"--only: '{unknown}' is none of {string.Join(", ", All)}");
        Directory.CreateDirectory(directory);
        if (a.Get(Replot) && !Directory.EnumerateFiles(directory, "*.csv").Any()) throw new UsageException($"--replot: {directory} holds no run's CSV");
        if (!a.Get(Replot))
        {
            torch.set_num_threads(1);
            var mnist = Bench.MnistSplits(a.Get(Common.Cache), stderr);
            using var train = mnist.Train.ToTensor();
            using var test = mnist.Test.ToTensor();
            stdout.WriteLine($"time to quality: MNIST 784-500-20, estimator B, M = 100, Adagrad 0.02 with the weight prior, 1 thread, {samples:N0} samples, the test bound every {every:N0}; {MachineFacts.Current().Cpu}");
            foreach (string name in only)
            {
                IReadOnlyList<(long Samples, double Seconds, double TestBound)>? rows = name switch
                {
                    "float32" => Ours(Bench.OurStep.Float32, train, test, samples, every),
                    "one-pass" => Ours(Bench.OurStep.OnePass, train, test, samples, every),
                    "bf16" when Bench.NativeBfloat16 => Ours(Bench.OurStep.Bfloat16, train, test, samples, every),
                    "pytorch" or "pytorch-bf16" => PyTorch(mnist, samples, every, name == "pytorch-bf16", stdout, stderr),
                    _ => null,
                };
                if (rows is null) { stdout.WriteLine($"{name}: skipped (not on this machine)"); continue; }
                File.WriteAllLines(Path.Combine(directory, name + ".csv"),
                    ["samples,seconds,test_bound", .. rows.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Samples},{r.Seconds:F1},{r.TestBound:F4}"))]);
                var last = rows[^1];
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {last.Samples:N0} samples in {last.Seconds:F0} s ({last.Samples / last.Seconds:F0} samples/s), test bound {last.TestBound:F2}"));
            }
        }
        string png = Path.Combine(directory, "time-to-quality.png");
        Plot(directory, png);
        stdout.WriteLine($"wrote {png}");
        return 0;
    }

    static IReadOnlyList<(long, double, double)> Ours(Bench.OurStep step, Tensor train, Tensor test, long samples, long every)
    {
        var config = Bench.PaperConfig(100, step == Bench.OurStep.Bfloat16, step == Bench.OurStep.OnePass);
        var g = Torch.generator(1);
        var state = Bench.PaperState(g);
        using var workspace = HandDerivedSteps.workspace(config, state.Model.Config);
        var rows = new List<(long, double, double)>();
        double seconds = 0;
        long done = 0;
        while (done < samples)
        {
            long block = Math.Min(every, samples - done) / 100;
            var clock = Stopwatch.StartNew();
            for (long i = 0; i < block; i++) state = HandDerivedSteps.step(config, train, g, workspace, state).Item1;
            seconds += clock.Elapsed.TotalSeconds;
            done += block * 100;
            using var evaluation = Torch.generator(1_000_003L + done);
            rows.Add((done, seconds, Evaluation.bound(EstimatorKind.B, state.Model, test, 1000, evaluation)));
        }
        return rows;
    }

    static IReadOnlyList<(long, double, double)>? PyTorch(Vae.Data.DataSet mnist, long samples, long every, bool bf16, TextWriter stdout, TextWriter log)
    {
        using var side = PyTorchSide.Find(mnist.Train, log, mnist.Test);
        stdout.WriteLine(side.Description);
        return side.Train(samples, every, bf16, log);
    }

    static readonly (string Name, string Label, ScottPlot.Color Colour, ScottPlot.LinePattern Pattern)[] Styles =
    [
        ("float32", "Vae, float32", ScottPlot.Colors.Blue, ScottPlot.LinePattern.Solid),
        ("one-pass", "Vae, one-pass float32", ScottPlot.Colors.Green, ScottPlot.LinePattern.Solid),
        ("bf16", "Vae, bfloat16 multiplies", ScottPlot.Colors.Purple, ScottPlot.LinePattern.Solid),
        ("pytorch", "PyTorch, float32", ScottPlot.Colors.Red, ScottPlot.LinePattern.Dashed),
        ("pytorch-bf16", "PyTorch, autocast bfloat16", ScottPlot.Colors.Orange, ScottPlot.LinePattern.Dashed),
    ];

    /// <summary>Every run's CSV in the directory as one line each: test bound against training seconds.</summary>
    static void Plot(string directory, string png)
    {
        ScriptNatives.EnsureSkia();
        var plot = new ScottPlot.Plot();
        plot.Font.Set("DejaVu Sans");
        foreach (var (name, label, colour, pattern) in Styles)
        {
            string csv = Path.Combine(directory, name + ".csv");
            if (!File.Exists(csv)) continue;
            var rows = File.ReadLines(csv).Skip(1).Select(l => l.Split(',')).ToArray();
            var line = plot.Add.ScatterLine(
                rows.Select(f => double.Parse(f[1], CultureInfo.InvariantCulture)).ToArray(),
                rows.Select(f => double.Parse(f[2], CultureInfo.InvariantCulture)).ToArray(), colour);
            (line.LegendText, line.LinePattern, line.LineWidth, line.MarkerSize) = (label, pattern, 2, 5);
        }
        plot.Axes.Bottom.Label.Text = "training seconds (one thread)";
        plot.Axes.Left.Label.Text = "test lower bound (nats per datapoint)";
        plot.Title("MNIST, J = 20, to 10^7 samples: " + MachineFacts.Current().Cpu);
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        plot.SavePng(png, 760, 520);
    }
}
