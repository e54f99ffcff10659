using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using Vae.Cli;
using Vae.Core;
using static TorchSharp.torch;

namespace Vae.Bench;

/// <summary>The paired benchmark: AEVB training throughput against a straightforward TorchSharp loop of the same model,
/// measured pair by pair in one run (ratios and medians, because shared machines are noisy), with the machine's
/// measured float32 matrix-multiply rate at the model's shapes, so every figure reads as a fraction of the hardware.</summary>
static class Bench
{
    /// <summary>FLOPs of one training sample of a D-H-J-H-D VAE (encoder with mean and log-variance heads, Bernoulli
    /// decoder): forward 2(DH + 2HJ + JH + HD); backward twice that, less the input gradient of the first layer (2DH).</summary>
    public static double FlopsPerSample(int d, int h, int j)
    {
        double forward = 2.0 * ((double)d * h + 2.0 * h * j + (double)j * h + (double)h * d);
        return forward + (2 * forward - 2.0 * d * h);
    }

    static readonly Option<bool> Quick = Opt.Flag("--quick", "fewer, shorter repetitions (5 of 60 steps; shorter step breakdowns)");
    static readonly Option<int[]> ThreadCounts = Opt.IntegerList("--threads", "the libtorch thread counts to measure (default: 1,2)", 1, 1024);
    static readonly Option<long?> Repetitions = Opt.OptionalInteger("--repetitions", "paired repetitions (default 9; 5 with --quick)", 1, 1000);
    static readonly Option<long?> Steps = Opt.OptionalInteger("--steps", "steps per repetition (default 200; 60 with --quick)", 1, 1_000_000);
    static readonly Option<bool> IwaeOnly = Opt.Flag("--iwae", "only the importance-weighted bound's step on Burda et al.'s network (k = 1, 5, 50; hand-derived, autograd, multiply bound)");
    static readonly Option<long> WorkerBatch = Opt.Integer("--m", "minibatch size", 100, 1, 100_000);
    static readonly Option<long> WorkerThreads = Opt.Integer("--threads", "libtorch threads", 1, 1, 1024);

    /// <summary>The benchmark's command line, with the hidden reference worker it starts.</summary>
    public static RootCommand Root(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("Vae's training throughput against a straightforward TorchSharp loop, paired, in the same run")
            { Quick, ThreadCounts, Repetitions, Steps, IwaeOnly, Common.Cache };
        root.SetAction(p => Run(new Arguments(p), stdout, stderr));
        var worker = new Command(ReferenceWorker, "the benchmark's reference process") { Hidden = true };
        foreach (var o in (Option[])[WorkerBatch, WorkerThreads, Common.Cache]) worker.Add(o);
        worker.SetAction(p => RunReferenceWorker(new Arguments(p), Console.In, stdout));
        root.Add(worker);
        root.Add(TimeToQuality.Command(stdout, stderr));
        return root;
    }

    /// <summary>Whether the CPU multiplies bfloat16 natively (AVX512_BF16 or AMX-BF16); without either, libtorch's
    /// bfloat16 products run on generic code many times slower than float32, and the bfloat16 cases are skipped.</summary>
    internal static readonly bool NativeBfloat16 = System.Runtime.Intrinsics.X86.X86Base.IsSupported
        && (System.Runtime.Intrinsics.X86.X86Base.CpuId(7, 1).Eax & (1 << 5)) != 0          // AVX512_BF16
        || System.Runtime.Intrinsics.X86.X86Base.IsSupported && (System.Runtime.Intrinsics.X86.X86Base.CpuId(7, 0).Edx & (1 << 22)) != 0; // AMX-BF16

    /// <summary>What this process's native tuning did, for the table's header.</summary>
    public static string Tuning { get; set; } = "no native tuning";

    static Vae.Data.ImageData Mnist(string? cache, TextWriter log) => MnistSplits(cache, log).Train;

    /// <summary>The paper's MNIST split (DataSets.MnistPaper).</summary>
    internal static Vae.Data.DataSet MnistSplits(string? cache, TextWriter log) =>
        Vae.Data.DataSets.MnistPaper(new Vae.Data.DataSetOptions { CacheDirectory = cache, Log = line => log.WriteLine(line) });

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr)
    {
        bool quick = a.Get(Quick);
        var threads = a.List(ThreadCounts) ?? [1, 2];
        int repetitions = (int)(a.Get(Repetitions) ?? (quick ? 5 : 9));
        int steps = (int)(a.Get(Steps) ?? (quick ? 60 : 200));
        stderr.WriteLine("loading mnist");
        var train = Mnist(a.Get(Common.Cache), stderr);
        using var data = train.ToTensor();
        if (a.Get(IwaeOnly))
        {
            stdout.WriteLine($"Vae.Bench --iwae: the importance-weighted bound's step on Burda et al.'s network, M = 20; medians of {repetitions} repetitions; libtorch {Torch.load()}; {Tuning}");
            foreach (int t in threads)
            {
                torch.set_num_threads(t);
                foreach (var (name, rate, unit) in IwaeCases(data, steps, repetitions, Torch.generator(4)))
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-26} {t,7} {rate,18:F0} {unit}"));
            }
            return 0;
        }
        stdout.WriteLine($"Vae.Bench: AEVB on MNIST (784-500-20, estimator B, Adagrad); {repetitions} paired repetitions of {steps} steps; " +
                         $"{Environment.ProcessorCount} logical processors; libtorch {Torch.load()}; {Tuning}");
        stdout.WriteLine(NativeBfloat16
            ? "bf16: --precision bfloat16 (bfloat16 matrix multiplies, float32 weights and Adagrad); one-pass: --gradient one-pass (float32); float32: the default step"
            : "bfloat16 cases skipped: this CPU has neither AVX512_BF16 nor AMX-BF16, so bfloat16 multiplies would run on generic code");
        stdout.WriteLine("of bound: ours over the step's eleven matrix multiplies alone (same shapes, threads and dtype), timed in the same repetition; the median of the per-repetition ratios, and ours over the best multiply rate of all repetitions");
        stdout.WriteLine("torchsharp: the straightforward TorchSharp loop in this process (our allocator and MKL settings) and in a process of its own (glibc's default malloc, MKL's own dispatch)");
        using var pytorch = PyTorchSide.Find(train, stderr);
        stdout.WriteLine(pytorch.Description);
        stdout.WriteLine($"{"case",-26} {"threads",7} {"ours samples/s",15} {"ms/step",8} {"of bound",9} {"of best bound",14} {"vs torchsharp",14} {"vs own process",15} {"pytorch samples/s",18} {"vs pytorch",11}");
        double quickLine = double.NaN, defaultMallocLine = double.NaN;
        var cases = (quick ? new[] { (100, OurStep.Float32), (100, OurStep.OnePass), (100, OurStep.Bfloat16) }
                           : new[] { (100, OurStep.Float32), (1000, OurStep.Float32), (100, OurStep.OnePass), (1000, OurStep.OnePass), (100, OurStep.Bfloat16), (1000, OurStep.Bfloat16) })
            .Where(c => c.Item2 != OurStep.Bfloat16 || NativeBfloat16).ToArray();
        foreach (int t in threads)
        {
            torch.set_num_threads(t);
            foreach (var (m, step) in cases)
            {
                int n = m == 1000 ? Math.Max(1, steps / 5) : steps;
                var r = Paired(data, m, step, n, repetitions, t, a.Get(Common.Cache), pytorch);
                string name = $"aevb-mnist-m{m}{step switch { OurStep.OnePass => "-one-pass", OurStep.Bfloat16 => "-bf16", _ => "" }}";
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-26} {t,7} {r.Ours,15:F0} {1000.0 * m / r.Ours,8:F2} {r.OfBound,9:P0} {r.OfBestBound,14:P0} {r.InProcessRatio,14:F2} {r.ReferenceRatio,15:F2} {r.PyTorch,18:F0} {r.PyTorchRatio,11:F2}"));
                if (m == 100 && step == OurStep.Float32 && t == threads.Max()) (quickLine, defaultMallocLine) = (r.InProcessRatio, r.ReferenceRatio);
            }
        }
        stdout.WriteLine($"{"other cases",-26} {"threads",7} {"throughput (median)",28}");
        foreach (int t in threads)
        {
            torch.set_num_threads(t);
            foreach (var (name, rate, unit) in OtherCases(data, steps, repetitions, quick))
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-26} {t,7} {rate,18:F0} {unit}"));
        }
        foreach (int t in threads)
        {
            torch.set_num_threads(t);
            string bf16 = NativeBfloat16
                ? string.Create(CultureInfo.InvariantCulture, $"; bfloat16 M = 100 {MatmulRate(100, 784, 500, 20, torch.bfloat16):F1} GFLOP/s, M = 1000 {MatmulRate(1000, 784, 500, 20, torch.bfloat16):F1} GFLOP/s")
                : "";
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"matrix multiply over one step's multiplies (forward and backward shapes), {t} threads: float32 M = 100 {MatmulRate(100, 784, 500, 20):F1} GFLOP/s, M = 1000 {MatmulRate(1000, 784, 500, 20):F1} GFLOP/s{bf16}"));
        }
        foreach (int t in threads)
        {
            torch.set_num_threads(t);
            foreach (var ourStep in new[] { OurStep.Float32, OurStep.OnePass, OurStep.Bfloat16 }.Where(c => c != OurStep.Bfloat16 || NativeBfloat16))
            {
                var (step, gradient, multiplies, adagrad, onePass) = StepBreakdown(data, ourStep, quick);
                string name = ourStep switch { OurStep.Float32 => "float32", OurStep.OnePass => "one-pass float32", _ => "bfloat16" };
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name} step at M = 100, {t} threads (median ms): whole step {step:F2}; gradient {gradient:F2}, of which its five large multiplies {multiplies:F2}; Adagrad's update {adagrad:F2} through libtorch, {onePass:F2} in one pass ({(ourStep == OurStep.Float32 ? "not used" : "used")} here)"));
            }
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"one training sample = {FlopsPerSample(784, 500, 20) / 1e6:F2} MFLOP; peak resident memory {PeakResidentMegabytes():F0} MB"));
        // The headline is the conservative ratio: the reference with our allocator setting, so it measures the step alone.
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"against the straightforward loop in a process of its own (default malloc, MKL's own dispatch): {defaultMallocLine:F2}"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"aevb-mnist-m100 speedup vs straightforward: {quickLine:F2}"));
        return 0;
    }

    /// <summary>The hidden verb of the reference process.</summary>
    public const string ReferenceWorker = "reference";

    /// <summary>Which of our steps a case measures: the default float32 step (hand-derived, libtorch's elementwise calls
    /// and Adagrad), the one-pass float32 step (--gradient one-pass), or bfloat16 multiplies (--precision bfloat16).</summary>
    internal enum OurStep { Float32, OnePass, Bfloat16 }

    sealed record PairedResult(double Ours, double OfBound, double OfBestBound, double Reference, double ReferenceRatio,
                               double InProcess, double InProcessRatio, double PyTorch, double PyTorchRatio);

    /// <summary>Alternates, repetition by repetition: our AEVB steps; the step's eleven multiplies alone (its bound);
    /// the reference loop in a process of its own (glibc's default malloc, as a straightforward program has it); the
    /// reference loop in this process (our allocator setting); and the PyTorch program (its precision as ours: float32,
    /// or autocast bfloat16) where there is one. Returns the median samples/s of each and the medians of the pairwise
    /// ratios (ours / theirs).</summary>
    static PairedResult Paired(Tensor data, int m, OurStep ourStep, int steps, int repetitions, int threads, string? cache, PyTorchSide pytorch)
    {
        bool mixed = ourStep == OurStep.Bfloat16;
        var config = PaperConfig(m, mixed, ourStep == OurStep.OnePass);
        var g = Torch.generator(1);
        // Ours: the step `vae train` takes here (the hand-derived step over the parameter vector).
        var state = PaperState(g);
        using var buffers = HandDerivedSteps.workspace(config, state.Model.Config);
        using var reference = new StraightforwardVae(784, 500, 20, 0.02, 2);
        using var worker = WorkerProcess.Reference(m, threads, cache);
        using var python = pytorch.Start(m, threads, mixed);
        using var multiplies = new StepMultiplies(m, m, 784, 500, 1, 20, mixed ? torch.bfloat16 : torch.float32);
        // Warm-up: allocator, kernels, and Adagrad's accumulation phase for all.
        for (int i = 0; i < 110; i++) { state = HandDerivedSteps.step(config, data, g, buffers, state).Item1; reference.Step(data, m); multiplies.Run(); }
        worker.Run(110);
        python?.Run(110);
        var ours = new List<double>(); var bound = new List<double>(); var theirs = new List<double>(); var inProcess = new List<double>(); var py = new List<double>();
        for (int r = 0; r < repetitions; r++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) state = HandDerivedSteps.step(config, data, g, buffers, state).Item1;
            ours.Add(steps * (double)m / clock.Elapsed.TotalSeconds);
            clock.Restart();
            for (int i = 0; i < steps; i++) multiplies.Run();
            bound.Add(steps * (double)m / clock.Elapsed.TotalSeconds);
            theirs.Add(steps * (double)m / worker.Run(steps));
            clock.Restart();
            for (int i = 0; i < steps; i++) reference.Step(data, m);
            inProcess.Add(steps * (double)m / clock.Elapsed.TotalSeconds);
            if (python is not null) py.Add(steps * (double)m / python.Run(steps));
        }
        return new PairedResult(Median(ours), Median(ours.Zip(bound, (o, b) => o / b)), Median(ours) / bound.Max(),
            Median(theirs), Median(ours.Zip(theirs, (o, t) => o / t)), Median(inProcess), Median(ours.Zip(inProcess, (o, t) => o / t)),
            py.Count > 0 ? Median(py) : double.NaN, py.Count > 0 ? Median(ours.Zip(py, (o, t) => o / t)) : double.NaN);
    }

    /// <summary>The reference process: loads MNIST, builds the straightforward loop for minibatch M, then for each line
    /// "N" on stdin runs N steps and answers the seconds they took.</summary>
    static int RunReferenceWorker(Arguments a, TextReader stdin, TextWriter stdout)
    {
        int m = (int)a.Get(WorkerBatch);
        torch.set_num_threads((int)a.Get(WorkerThreads));
        var train = Mnist(a.Get(Common.Cache), TextWriter.Null);
        using var data = train.ToTensor();
        using var reference = new StraightforwardVae(784, 500, 20, 0.02, 2);
        stdout.WriteLine("ready");
        stdout.Flush();
        while (stdin.ReadLine() is { } line && int.TryParse(line, CultureInfo.InvariantCulture, out int n))
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) reference.Step(data, m);
            stdout.WriteLine(clock.Elapsed.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));
            stdout.Flush();
        }
        return 0;
    }

    /// <summary>Throughput of the other learners and of evaluation: AEVB and wake-sleep on MNIST and on Frey Face (J = 10,
    /// 200 hidden units), each by its hand-derived and its autograd step, Monte Carlo EM on 1000 MNIST images (J = 3, 100 hidden units; leapfrog steps per second summed over
    /// chains), the importance-weighted bound's step on Burda et al.'s network at k = 1, 5, 50 (hand-derived and autograd,
    /// beside its multiplies' bound), and the K = 5000 importance-weighted bound (seconds for the 10,000 test images, timed on a part).</summary>
    static IEnumerable<(string Name, double Rate, string Unit)> OtherCases(Tensor mnist, int steps, int repetitions, bool quick)
    {
        var paper = LearnerConfigModule.paper(0.02);
        // Past Adagrad's warm-up (100 updates) before timing: 110 minibatch steps, or 22 EM iterations of 5 updates each.
        double Measure(Func<TrainerState, TrainerState> step, TrainerState state, int n, int warmUpSteps = 110) => StepsPerSecond(step, state, n, repetitions, warmUpSteps);
        TrainerState Fresh(int d, int h, int j, Likelihood likelihood) => Aevb.init(VaeModelModule.create(new ModelConfig(d, h, j, likelihood, float32, 0.01, 1), Torch.generator(3)));
        var g = Torch.generator(4);

        // The hand-derived steps `vae train` takes (HandDerivedSteps), each beside the autograd step of the same learner.
        double Fused(bool wakeSleep, Tensor data, TrainerState fresh, int n)
        {
            var state = HandDerivedSteps.prepare(fresh);
            using var b = HandDerivedSteps.workspace(paper, state.Model.Config);
            return Measure(s => (wakeSleep ? HandDerivedSteps.wakeSleepStep(paper, data, g, b, s) : HandDerivedSteps.step(paper, data, g, b, s)).Item1, state, n);
        }
        double aevb = 100 * Fused(false, mnist, Fresh(784, 500, 20, Likelihood.Bernoulli), steps);
        yield return ("aevb-mnist-m100", aevb, "samples/s (hand-derived step)");
        yield return ("aevb-mnist-m100-autograd", 100 * Measure(s => Aevb.step(paper, mnist, g, s).Item1, Fresh(784, 500, 20, Likelihood.Bernoulli), steps), "samples/s (autograd step)");
        double wakeSleep = 100 * Fused(true, mnist, Fresh(784, 500, 20, Likelihood.Bernoulli), steps);
        yield return ("wake-sleep-mnist-m100", wakeSleep, string.Create(CultureInfo.InvariantCulture, $"samples/s (hand-derived step; {wakeSleep / aevb:P0} of aevb-mnist-m100)"));
        yield return ("wake-sleep-mnist-m100-autograd", 100 * Measure(s => WakeSleep.step(paper, mnist, g, s).Item1, Fresh(784, 500, 20, Likelihood.Bernoulli), steps), "samples/s (autograd step)");
        using (var frey = torch.rand(1700, 560, generator: g))
        {
            yield return ("aevb-frey-m100", 100 * Fused(false, frey, Fresh(560, 200, 10, Likelihood.GaussianSigmoidMean), steps), "samples/s (hand-derived step)");
            yield return ("aevb-frey-m100-autograd", 100 * Measure(s => Aevb.step(paper, frey, g, s).Item1, Fresh(560, 200, 10, Likelihood.GaussianSigmoidMean), steps), "samples/s (autograd step)");
            yield return ("wake-sleep-frey-m100", 100 * Fused(true, frey, Fresh(560, 200, 10, Likelihood.GaussianSigmoidMean), steps), "samples/s (hand-derived step)");
            yield return ("wake-sleep-frey-m100-autograd", 100 * Measure(s => WakeSleep.step(paper, frey, g, s).Item1, Fresh(560, 200, 10, Likelihood.GaussianSigmoidMean), steps), "samples/s (autograd step)");
        }

        using (var subset = mnist.narrow(0, 0, 1000))
        {
            var state = Fresh(784, 100, 3, Likelihood.Bernoulli);
            state = new TrainerState(state.Model, state.Optimizer, Microsoft.FSharp.Core.FSharpOption<McmcState>.Some(Mcem.initChains(state.Model, 1000, g)));
            double iterations = Measure(s => Mcem.step(paper, subset, g, s).Item1, state, Math.Max(1, steps / 20), warmUpSteps: 22);
            yield return ("mcem-mnist-n1000", iterations * 1000 * Hmc.paper.LeapfrogSteps, "leapfrog steps/s (chains x steps)");
        }

        foreach (var c in IwaeCases(mnist, steps, repetitions, g)) yield return c;

        var model = Fresh(784, 500, 20, Likelihood.Bernoulli).Model;
        int images = quick ? 20 : 200;
        using (var test = mnist.narrow(0, 0, images))
        {
            Evaluation.importanceWeighted(model, test.narrow(0, 0, 2), 100, 100, g); // warm-up
            var clock = Stopwatch.StartNew();
            Evaluation.importanceWeighted(model, test, 5000, 100, g);
            yield return ("iwae-k5000-10k-images", clock.Elapsed.TotalSeconds * 10_000 / images, $"s for 10,000 images (timed on {images})");
            if (!NativeBfloat16) yield break;
            clock.Restart();
            Evaluation.importanceWeightedIn(true, model, test, 5000, 100, g);
            yield return ("iwae-k5000-10k-images-bf16", clock.Elapsed.TotalSeconds * 10_000 / images, $"s for 10,000 images (timed on {images}; bfloat16 output multiply)");
        }
    }

    /// <summary>Steps per second of <paramref name="step"/> from <paramref name="state"/>: the median of
    /// <paramref name="repetitions"/> timings of <paramref name="n"/> steps, after <paramref name="warmUpSteps"/>.</summary>
    static double StepsPerSecond(Func<TrainerState, TrainerState> step, TrainerState state, int n, int repetitions, int warmUpSteps)
    {
        for (int i = 0; i < warmUpSteps; i++) state = step(state);
        var rates = new List<double>();
        for (int r = 0; r < repetitions; r++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) state = step(state);
            rates.Add(n / clock.Elapsed.TotalSeconds);
        }
        return Median(rates);
    }

    /// <summary>Burda et al.'s network (784-200-200-50, two tanh layers, Bernoulli decoder), M = 20, Adam under their
    /// schedule, dynamic binarisation: the importance-weighted bound's step at k = 1, 5, 50 by the hand-derived step
    /// (LogWeightSteps, what `vae reproduce iwae-table` takes) and by autograd, beside the step's multiplies alone.</summary>
    static IEnumerable<(string Name, double Rate, string Unit)> IwaeCases(Tensor mnist, int steps, int repetitions, torch.Generator g)
    {
        var paper = LearnerConfigModule.paper(0.02);
        foreach (int k in new[] { 1, 5, 50 })
        {
            var burda = new LearnerConfig(EstimatorKind.Iwae, k, 20, OptimizerConfig.NewAdamOptimizer(Adam.burda(0.001, Vae.Core.StepSizeSchedule.BurdaStages)),
                                          true, true, false, GradientChoice.Auto, paper.WakeSleep, Vae.Core.EncoderGradient.Reparameterised, paper.Order, paper.Initialization, paper.OutputBias, paper.ScaleHead, paper.WakeSleepOrder);
            TrainerState Burda() => Aevb.initFor(burda.Optimizer, VaeModelModule.create(new ModelConfig(784, 200, 50, Likelihood.Bernoulli, float32, 0.01, 2), Torch.generator(3)));
            int n = Math.Max(1, k == 50 ? steps / 10 : k == 5 ? steps / 2 : steps);
            var fresh = HandDerivedSteps.prepare(Burda()); // the moments as vectors, as a run's hand-derived step keeps them
            var layout = VaeModelModule.layout(fresh.Model.Config);
            var gradient = VaeModelModule.ofVector(fresh.Model.Config, torch.zeros(layout.Count));
            double byHand = 20 * StepsPerSecond(s => LogWeightSteps.step(burda, mnist, g, gradient, layout.WeightCount, s).Item1, fresh, n, repetitions, 10);
            VaeModelModule.dispose(gradient);
            double byAutograd = 20 * StepsPerSecond(s => Aevb.step(burda, mnist, g, s).Item1, Burda(), n, repetitions, 10);
            using var multiplies = new StepMultiplies(20, 20 * k, 784, 200, 2, 50, torch.float32);
            double bound = 20 * multiplies.StepsPerSecond(repetitions);
            yield return ($"iwae-burda-k{k}-m20", byHand, string.Create(CultureInfo.InvariantCulture,
                $"samples/s (hand-derived step; autograd {byAutograd:F0}, {byHand / byAutograd:F2}x; {byHand / bound:P0} of its multiplies alone, {bound:F0} samples/s at {multiplies.Gflop * bound / 20:F1} GFLOP/s)"));
        }
    }

    /// <summary>Where a step of the fused AEVB step (M = 100; float32, or with bfloat16 multiplies when mixed) spends its
    /// time, in median milliseconds: the whole step, the gradient alone (HandDerivedSteps.gradient on one minibatch), the five
    /// large matrix multiplies of a step on their own (forward x W1ᵀ and h W5ᵀ; backward dᵀh, d W5 and dᵀx; bfloat16
    /// operands when mixed), Adagrad's update over the parameter vector through libtorch (Adagrad.ascend), and the same update
    /// in one pass (Adagrad.ascendOnePass, which the mixed-precision step uses); medians of 7 rounds of 50 calls (3 of 10 when quick).</summary>
    static (double Step, double Gradient, double Multiplies, double Adagrad, double OnePass) StepBreakdown(Tensor data, OurStep ourStep, bool quick)
    {
        var (rounds, calls) = quick ? (3, 10) : (7, 50);
        bool mixed = ourStep == OurStep.Bfloat16;
        var config = PaperConfig(100, mixed, ourStep == OurStep.OnePass);
        var operands = mixed ? torch.bfloat16 : torch.float32;
        var g = Torch.generator(6);
        var state = PaperState(g);
        using var b = HandDerivedSteps.workspace(config, state.Model.Config);
        for (int i = 0; i < 110; i++) state = HandDerivedSteps.step(config, data, g, b, state).Item1; // past the warm-up
        using var x = Learner.minibatch(config, data, g);
        using var eps = torch.randn(100, 20, generator: g);
        using var xm = x.to_type(operands);
        using var w1 = torch.randn(500, 784, dtype: operands); using var w5 = torch.randn(784, 500, dtype: operands);
        using var h = torch.randn(100, 500, dtype: operands); using var d = torch.randn(100, 784, dtype: operands);
        using var gw5 = torch.zeros(784, 500, dtype: operands); using var gw1 = torch.zeros(500, 784, dtype: operands);
        using var parameters = state.Model.ParameterVector.clone(); using var sums = state.Optimizer.SumSquares[0].clone();
        double Time(Action action)
        {
            for (int i = 0; i < 20; i++) action();
            var times = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < calls; i++) action();
                times.Add(clock.Elapsed.TotalMilliseconds / calls);
            }
            return Median(times);
        }
        void Scoped(Action action) { using var scope = torch.NewDisposeScope(); action(); }
        var adagrad = Optimizer.adagrad(config.Optimizer);
        return (
            Time(() => state = HandDerivedSteps.step(config, data, g, b, state).Item1),
            Time(() => Scoped(() => HandDerivedSteps.gradient(config, data.shape[0], b, state.Model, x, eps))),
            Time(() => Scoped(() =>
            {
                torch.mm(xm, w1.t()); torch.mm(h, w5.t());
                gw5.addmm_(d.t(), h, 0, 1); torch.mm(d, w5); gw1.addmm_(h.t(), xm, 0, 1);
            })),
            Time(() => Scoped(() => Adagrad.ascend(adagrad, new OptimizerState([sums], [], 1000), [parameters], [b.Gradient]))),
            Time(() => Adagrad.ascendOnePass(adagrad, new OptimizerState([sums], [], 1000), parameters, b.Gradient)));
    }

    /// <summary>A state of the paper's MNIST model (784-500-20, N(0, 0.01²) from <paramref name="g"/>) prepared for the
    /// hand-derived steps.</summary>
    internal static TrainerState PaperState(torch.Generator g) =>
        HandDerivedSteps.prepare(Aevb.init(VaeModelModule.create(new ModelConfig(784, 500, 20, Likelihood.Bernoulli, float32, 0.01, 1), g)));

    /// <summary>The paper's AEVB settings (Adagrad 0.02) with minibatches of <paramref name="m"/>, in bfloat16 mixed
    /// precision or with the one-pass float32 step when asked.</summary>
    internal static LearnerConfig PaperConfig(int m, bool mixed, bool onePass = false)
    {
        var paper = LearnerConfigModule.paper(0.02);
        return new LearnerConfig(paper.Estimator, paper.Samples, m, paper.Optimizer, paper.WeightPrior, paper.Binarize, mixed,
            onePass ? GradientChoice.OnePass : paper.Gradient, paper.WakeSleep, paper.EncoderGradient, paper.Order, paper.Initialization, paper.OutputBias, paper.ScaleHead, paper.WakeSleepOrder);
    }

    static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>The matrix-multiply rate (GFLOP/s; float32 unless dtype says otherwise) over the eleven multiplies of one
    /// fused step of the model with M datapoints (StepMultiplies). The median of several timings.</summary>
    static double MatmulRate(int m, int d, int h, int j, ScalarType? dtype = null)
    {
        using var multiplies = new StepMultiplies(m, m, d, h, 1, j, dtype ?? torch.float32);
        double flops = FlopsPerSample(d, h, j) * m;
        int reps = Math.Max(3, (int)(5e8 / flops));
        var rates = new List<double>();
        for (int k = 0; k < 5; k++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) multiplies.Run();
            rates.Add(flops * reps / clock.Elapsed.TotalSeconds / 1e9);
        }
        return Median(rates);
    }

    static double PeakResidentMegabytes()
    {
        // VmHWM: the process's peak resident set (Linux); elsewhere the runtime's peak working set.
        string? line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)) : null;
        return line is null ? Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0
            : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}

/// <summary>The matrix multiplies of one training step of an MLP VAE with <c>layers</c> tanh layers of <c>h</c> units,
/// encoder rows <c>m</c> and decoder rows <c>rows</c> (k·M for k samples per datapoint), operands of <c>dtype</c>: each
/// layer's forward product, its weight gradient and (but for the encoder's first layer) its input gradient, with the
/// encoder's two heads as one product (the paper's step: one layer, rows = M, eleven products). Their time alone is
/// the step's multiply bound.</summary>
sealed class StepMultiplies : IDisposable
{
    readonly List<(Tensor A, Tensor B)> _products = [];

    public StepMultiplies(int m, int rows, int d, int h, int layers, int j, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        void Layer(int n, int inputs, int outputs, bool inputGradient)
        {
            Tensor a = torch.rand(n, inputs, dtype: dtype), w = torch.rand(outputs, inputs, dtype: dtype), dy = torch.rand(n, outputs, dtype: dtype);
            _products.Add((a, w.t()));
            _products.Add((dy.t(), a));
            if (inputGradient) _products.Add((dy, w));
        }
        Layer(m, d, h, false);
        for (int i = 1; i < layers; i++) Layer(m, h, h, true);
        Layer(m, h, 2 * j, true);
        Layer(rows, j, h, true);
        for (int i = 1; i < layers; i++) Layer(rows, h, h, true);
        Layer(rows, h, d, true);
        scope.Detach(_products.SelectMany(p => new[] { p.A, p.B }));
    }

    /// <summary>GFLOP of one step's multiplies.</summary>
    public double Gflop => _products.Sum(p => 2.0 * p.A.shape[0] * p.A.shape[1] * p.B.shape[1]) / 1e9;

    /// <summary>One step's multiplies.</summary>
    public void Run()
    {
        foreach (var (a, b) in _products) torch.mm(a, b).Dispose();
    }

    /// <summary>Steps' multiplies per second: the median of <paramref name="repetitions"/> timings of about 0.3 s each.</summary>
    public double StepsPerSecond(int repetitions)
    {
        int reps = Math.Max(3, (int)(30 / Math.Max(Gflop, 1e-3)));
        var rates = new List<double>();
        for (int r = 0; r < repetitions; r++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) Run();
            rates.Add(reps / clock.Elapsed.TotalSeconds);
        }
        rates.Sort();
        return rates[rates.Count / 2];
    }

    public void Dispose()
    {
        foreach (var (a, b) in _products) { a.Dispose(); b.Dispose(); }
    }
}

/// <summary>A step loop in a child process, driven over its stdin: it prints "ready", then answers each line "N" with
/// the seconds N steps took. The reference loop (this program's hidden reference verb) or the PyTorch program.</summary>
sealed class WorkerProcess : IDisposable
{
    readonly Process _process;
    WorkerProcess(Process process) => _process = process;

    /// <summary>The straightforward TorchSharp loop, in this program's hidden reference verb, with MKL's and glibc's defaults.</summary>
    public static WorkerProcess Reference(int m, int threads, string? cache)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet");
        // Under `dotnet Vae.Bench.dll` the process path is dotnet's: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(Bench).Assembly.Location);
        foreach (var arg in new[] { Bench.ReferenceWorker, "--m", m.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        if (cache is not null) { start.ArgumentList.Add("--cache"); start.ArgumentList.Add(cache); }
        return Start(start, threads, "the reference process");
    }

    public static WorkerProcess Start(ProcessStartInfo start, int threads, string what)
    {
        (start.RedirectStandardInput, start.RedirectStandardOutput, start.RedirectStandardError, start.UseShellExecute) = (true, true, true, false);
        start.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        var process = Process.Start(start) ?? throw new InvalidOperationException($"bench: {what} did not start");
        var errors = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (errors) errors.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        var worker = new WorkerProcess(process);
        if (process.StandardOutput.ReadLine() != "ready")
        {
            worker.Dispose();
            throw new InvalidOperationException($"bench: {what} failed to start: {errors}");
        }
        return worker;
    }

    /// <summary>Runs the worker's loop for <paramref name="steps"/> steps; returns the seconds they took.</summary>
    public double Run(int steps)
    {
        _process.StandardInput.WriteLine(steps.ToString(CultureInfo.InvariantCulture));
        _process.StandardInput.Flush();
        string answer = _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("bench: a worker process stopped");
        return double.Parse(answer, CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try { _process.StandardInput.Close(); if (!_process.WaitForExit(10_000)) _process.Kill(); } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

/// <summary>The PyTorch program of the same model (bench/pytorch/aevb.py) run by Debian's python3-torch, with the
/// training images it reads written once as a .npy file; absent (and said so) where python3 cannot import torch.</summary>
sealed class PyTorchSide : IDisposable
{
    const string Python = "/usr/bin/python3";
    readonly string? _directory, _script, _coreType;

    /// <summary>One line for the table's header: the PyTorch version, its BLAS and its allocator setting, or why there is none.</summary>
    public string Description { get; }

    PyTorchSide(string? directory, string? script, string description, string? coreType) =>
        (_directory, _script, Description, _coreType) = (directory, script, description, coreType);

    /// <summary>glibc's malloc as our process sets it (the mmap threshold at its maximum, trimming off), so that the pair
    /// compares the steps and not the allocators.</summary>
    public const string MallocTunables = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647";

    public static PyTorchSide Find(Vae.Data.ImageData train, TextWriter log, Vae.Data.ImageData? test = null)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "pytorch", "aevb.py");
        if (!File.Exists(script)) return new(null, null, $"pytorch: skipped ({script} is missing from the build)", null);
        var (version, openBlasCore) = Probe(null);
        if (version is null) return new(null, null, $"pytorch: skipped ({Python} cannot import torch: apt-get install python3-torch)", null);
        // Debian's OpenBLAS (0.3.21) runs its generic Prescott kernels on CPUs newer than it knows (Emerald Rapids among
        // them): where it does on a CPU with AVX2 or AVX-512, name the kernels for the CPU's instructions instead.
        string? coreType = null;
        if (openBlasCore == "Prescott")
        {
            coreType = Bench.NativeBfloat16 && System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "Cooperlake"
                : System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "SkylakeX" : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "Haswell" : null;
            if (coreType is not null) version = Probe(coreType).Version ?? version;
        }
        string directory = Path.Combine(Path.GetTempPath(), "vae-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        log.WriteLine("writing the training images for the PyTorch program");
        WriteNpy(Path.Combine(directory, "train.npy"), train.Pixels, train.Count, train.Dimension);
        if (test is not null) WriteNpy(Path.Combine(directory, "test.npy"), test.Pixels, test.Count, test.Dimension);
        string kernels = coreType is null ? (openBlasCore is null ? "" : $", OpenBLAS's own kernel choice ({openBlasCore})")
            : $", OPENBLAS_CORETYPE={coreType} (OpenBLAS chose its generic Prescott kernels for this CPU)";
        return new(directory, script, $"pytorch: bench/pytorch/aevb.py (nn.Linear, autograd, torch.optim.Adagrad; bf16 cases under torch.autocast) with torch {version}{kernels}, glibc malloc tuned as ours ({MallocTunables})", coreType);
    }

    /// <summary>torch's version and the BLAS it loaded, and OpenBLAS's kernel choice where it is OpenBLAS; nulls where
    /// python3 cannot import torch.</summary>
    static (string? Version, string? OpenBlasCore) Probe(string? coreType)
    {
        var start = new ProcessStartInfo(Python, ["-c", "import torch, re; torch.ones(2, 2) @ torch.ones(2, 2); " +
            "b = open('/proc/self/maps').read(); print(torch.__version__, 'BLAS', ('OpenBLAS (' + re.search(r'/usr/lib/x86_64-linux-gnu/(openblas[^/]*)/', b).group(1) + ')') if 'openblas' in b else ('BLIS' if 'blis' in b else ('MKL' if 'mkl' in b else 'reference BLAS (slow: apt-get install libopenblas0-openmp)')))"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["OPENBLAS_VERBOSE"] = "2";
        if (coreType is not null) start.Environment["OPENBLAS_CORETYPE"] = coreType;
        using var probe = Process.Start(start);
        if (probe is null) return (null, null);
        var errors = probe.StandardError.ReadToEndAsync();
        var lines = probe.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Concat(errors.Result.Split('\n', StringSplitOptions.TrimEntries)).ToList();
        probe.WaitForExit();
        if (probe.ExitCode != 0) return (null, null);
        string? core = lines.FirstOrDefault(l => l.StartsWith("Core: ", StringComparison.Ordinal))?["Core: ".Length..];
        return (lines.FirstOrDefault(l => l.Contains(" BLAS ", StringComparison.Ordinal)), core);
    }

    /// <summary>The PyTorch step loop for minibatches of <paramref name="m"/>, or null where there is none.</summary>
    public WorkerProcess? Start(int m, int threads, bool bf16)
    {
        if (_script is null || _directory is null) return null;
        var start = new ProcessStartInfo(Python, [_script, "worker", "--data", Path.Combine(_directory, "train.npy"), "--m", m.ToString(CultureInfo.InvariantCulture),
            "--threads", threads.ToString(CultureInfo.InvariantCulture), .. bf16 ? new[] { "--bf16" } : []]);
        start.Environment["GLIBC_TUNABLES"] = MallocTunables;
        if (_coreType is not null) start.Environment["OPENBLAS_CORETYPE"] = _coreType;
        return WorkerProcess.Start(start, threads, "the PyTorch program");
    }

    /// <summary>Trains the PyTorch program to <paramref name="samples"/> samples (minibatches of 100, one thread),
    /// measuring the test bound every <paramref name="every"/> samples; returns its rows (samples, training seconds,
    /// test bound), or null where there is no PyTorch.</summary>
    public IReadOnlyList<(long Samples, double Seconds, double TestBound)>? Train(long samples, long every, bool bf16, TextWriter log)
    {
        if (_script is null || _directory is null) return null;
        string csv = Path.Combine(_directory, bf16 ? "curve-bf16.csv" : "curve.csv");
        var start = new ProcessStartInfo(Python, [_script, "train", "--data", Path.Combine(_directory, "train.npy"), "--test", Path.Combine(_directory, "test.npy"),
            "--samples", samples.ToString(CultureInfo.InvariantCulture), "--eval-every", every.ToString(CultureInfo.InvariantCulture), "--threads", "1",
            "--out", csv, .. bf16 ? new[] { "--bf16" } : []]) { RedirectStandardError = true };
        start.Environment["GLIBC_TUNABLES"] = MallocTunables;
        start.Environment["OMP_NUM_THREADS"] = "1";
        if (_coreType is not null) start.Environment["OPENBLAS_CORETYPE"] = _coreType;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bench: the PyTorch program did not start");
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"bench: the PyTorch program failed: {errors}");
        return [.. File.ReadLines(csv).Skip(1).Select(l => l.Split(',')).Select(f =>
            (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture)))];
    }

    /// <summary>A float32 matrix as a .npy file (format 1.0, little-endian, C order).</summary>
    static void WriteNpy(string path, ReadOnlySpan<float> values, int rows, int cols)
    {
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        int padded = (10 + header.Length + 1 + 63) / 64 * 64;
        header = header.PadRight(padded - 10 - 1) + "\n";
        using var file = File.Create(path);
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8)]);
        file.Write(System.Text.Encoding.ASCII.GetBytes(header));
        file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values[..(rows * cols)]));
    }

    public void Dispose()
    {
        if (_directory is not null) Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>The straightforward implementation the benchmark compares against: the same model, estimator B and weight
/// prior, written as one would in TorchSharp without thought for speed (autograd on the loss, torch.optim.Adagrad, a
/// dispose scope per step, the minibatch gathered by index_select).</summary>
sealed class StraightforwardVae : IDisposable
{
    readonly TorchSharp.Modules.Parameter[] _p;
    readonly torch.optim.Optimizer _adagrad;
    readonly torch.Generator _g;

    public StraightforwardVae(int d, int h, int j, double stepSize, long seed)
    {
        _g = new torch.Generator((ulong)seed);
        TorchSharp.Modules.Parameter P(params long[] shape) => new(torch.randn(shape, generator: _g) * 0.01);
        _p = [P(h, d), P(h), P(j, h), P(j), P(j, h), P(j), P(h, j), P(h), P(d, h), P(d)];
        _adagrad = torch.optim.Adagrad(_p, lr: stepSize);
    }

    public void Step(Tensor data, int m)
    {
        using var scope = torch.NewDisposeScope();
        var x = data.index_select(0, torch.randint(0, data.shape[0], [m], generator: _g));
        var h = torch.nn.functional.linear(x, _p[0], _p[1]).tanh();
        var mu = torch.nn.functional.linear(h, _p[2], _p[3]);
        var logVar = torch.nn.functional.linear(h, _p[4], _p[5]);
        var z = mu + (logVar * 0.5).exp() * torch.randn(mu.shape, generator: _g);
        var logits = torch.nn.functional.linear(torch.nn.functional.linear(z, _p[6], _p[7]).tanh(), _p[8], _p[9]);
        var logLikelihood = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.Sum);
        var kl = ((logVar + 1) - mu * mu - logVar.exp()).sum() * -0.5;
        // The paper's N(0, I) prior on the weights (not the biases), scaled by M/N, as our step has it.
        var logPrior = (_p[0].square().sum() + _p[2].square().sum() + _p[4].square().sum() + _p[6].square().sum() + _p[8].square().sum()) * -0.5;
        var loss = -(logLikelihood - kl + logPrior * ((double)m / data.shape[0])) / m;
        _adagrad.zero_grad();
        loss.backward();
        _adagrad.step();
    }

    public void Dispose() { foreach (var p in _p) p.Dispose(); _adagrad.Dispose(); _g.Dispose(); }
}
