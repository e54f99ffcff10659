using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae train</c>: AEVB on a data set, into a run directory.</summary>
static class TrainVerb
{
    /// <summary>The default budget: a few minutes on a 2-core machine.</summary>
    public const long DefaultSamples = 1_000_000;

    public static readonly Option<string> Algorithm = Opt.Choice("--algorithm", "AEVB (Algorithm 1), or a baseline: wake-sleep, Monte Carlo EM", "aevb", "aevb", "wake-sleep", "mcem");
    public static readonly Option<long?> NTrain = Opt.OptionalInteger("--ntrain", "train on the first N training images only (default: all)", 1, int.MaxValue);
    public static readonly Option<long?> Latent = Opt.OptionalInteger("--latent", "latent dimensions J (default: 20 for mnist, 10 for frey-face)", 1, 100_000);
    public static readonly Option<long?> Hidden = Opt.OptionalInteger("--hidden", "hidden units of encoder and decoder (default: 500 for mnist, 200 for frey-face)", 1, 1_000_000);
    public static readonly Option<long> HiddenLayers = Opt.Integer("--hidden-layers", "tanh layers of --hidden units in encoder and decoder (the paper: 1; Burda et al.: 2)", 1, 1, 100);
    public static readonly Option<string> Estimator = Opt.Choice("--estimator", "the SGVB estimator: A (eq. 6) or B (eq. 7, KL in closed form)", "b", "a", "b");
    public static readonly Option<string> Objective = Opt.Choice("--objective", "what AEVB ascends: the lower bound (eq. 3, by --estimator) or the importance-weighted bound with --k samples (Burda et al. eq. 8)", "elbo", "elbo", "iwae");
    public static readonly Option<long> K = Opt.Integer("--k", "samples of the noise per datapoint: K of the importance-weighted bound, or L of the lower bound's estimator (averaged)", 1, 1, 100_000);
    public static readonly Option<string> EncoderGradient = Opt.Choice("--encoder-gradient", "the encoder's gradient of the importance-weighted bound: its plain gradient, or doubly reparameterised (DReG, Tucker et al. 2018)", "reparameterised", "reparameterised", "dreg");
    public static readonly Option<string> Likelihood = Opt.Choice("--likelihood", "your own data's decoder (--dataset idx or npy): Bernoulli for values in [0, 1], or Gaussian (Appendix C.2) for any real values", "bernoulli", "bernoulli", "gaussian");
    public static readonly Option<bool> Standardize = Opt.Flag("--standardize", "with --likelihood gaussian: standardise each feature by its training mean and standard deviation (kept with the model; bounds stay in the data's units)");
    public static readonly Option<string> StepSize = Opt.StepSize("the optimiser's step size: Adagrad's (default 0.02), or auto: section 5's choice from {0.01, 0.02, 0.1} by the training bound after 10^5 samples; Adam's (default 0.001)");
    public static readonly Option<long> Batch = Opt.Integer("--batch", "minibatch size M", 100, 1, 1_000_000);
    public static readonly Option<string> OptimizerChoice = Opt.Choice("--optimizer", "adagrad (the paper's, section 5) or adam (Burda et al. 2015: beta1 0.9, beta2 0.999, epsilon 1e-4; --step-size defaults to 0.001)", "adagrad", "adagrad", "adam");
    public static readonly Option<string> Schedule = Opt.Choice("--schedule", "Adam's step size over training: constant, or burda (3^i passes at 10^(-i/7) times --step-size for i = 0..7, 3280 passes)", "constant", "constant", "burda");
    public static readonly Option<double> AdamBeta1 = Opt.Number("--adam-beta1", "Adam's decay of its average of gradients (Burda et al.'s text: 0.9; their code: 0.99)", new AevbOptions().AdamBeta1, 0, 1);
    public static readonly Option<double> AdamBeta2 = Opt.Number("--adam-beta2", "Adam's decay of its average of squared gradients", new AevbOptions().AdamBeta2, 0, 1);
    public static readonly Option<double> AdamEpsilon = Opt.Number("--adam-epsilon", "added to the root of Adam's squared-gradient average", new AevbOptions().AdamEpsilon, 0, double.PositiveInfinity, minExclusive: true);
    public static readonly Option<string> AdamVariantChoice = Opt.Choice("--adam-variant", "Adam's update: kingma-ba (Algorithm 1; Burda et al.'s text) or burda-code (their code: second moments from 1, each step moving by the moments before its gradient)", "kingma-ba", "kingma-ba", "burda-code");
    public static readonly Option<string> MinibatchOrderChoice = Opt.Choice("--minibatch-order", "how minibatches take the training data: with-replacement (drawn at every step, the paper's code) or in-order (the data's order, the same every pass: Burda et al.'s code)", "with-replacement", "with-replacement", "in-order");
    public static readonly Option<string> InitializationChoice = Opt.Choice("--init", "how the parameters are first drawn: paper-normal (N(0, 0.01^2), section 5) or glorot-uniform (weights uniform on +-sqrt(6 / (fan-in + fan-out)), biases 0: Burda et al.'s code)", "paper-normal", "paper-normal", "glorot-uniform");
    public static readonly Option<string> OutputBiasChoice = Opt.Choice("--decoder-output-bias", "the Bernoulli decoder's output bias before the first step: drawn (as --init draws it) or training-mean-logit (the logit of the training set's per-pixel mean clipped to [0.001, 0.999]: Burda et al.'s code)", "drawn", "drawn", "training-mean-logit");
    public static readonly Option<string> ScaleHeadChoice = Opt.Choice("--encoder-scale-head", "the coordinates Adam steps the encoder's scale head in: log-variance (log sigma^2 = W h + b, the paper's) or log-standard-deviation (log sigma = W' h + b', the model keeping W = 2 W': Burda et al.'s code); AEVB with --optimizer adam", "log-variance", "log-variance", "log-standard-deviation");
    public static readonly Option<string> WeightPrior = Opt.Choice("--weight-prior", "the N(0, I) prior on the weights, scaled by M/N: on (the paper's MAP objective, section 5) or off (maximum likelihood, as Burda et al.)", "on", "on", "off");
    public static readonly Option<long> WarmUp = Opt.Integer("--warm-up", "Adagrad updates that only accumulate squared gradients before the first step (anglepy's step_adagrad: 10)", new AevbOptions().WarmUp, 0, 1_000_000_000);
    public static readonly Option<long?> Samples = Opt.OptionalInteger("--samples", "the budget in training samples (default 10^6; a resumed run keeps its own)", 1);
    public static readonly Option<long?> Epochs = Opt.OptionalInteger("--epochs", "the budget in passes over the training set, instead of --samples", 1);
    public static readonly Option<string> Binarize = Opt.Choice("--binarize", "grey levels as they are, or a fresh binary draw of each image per step", "none", "none", "dynamic");
    public static readonly Option<string> Gradient = Opt.Choice("--gradient", "the gradient: auto (hand-derived where it covers the settings), libtorch's autograd, hand-derived, or one-pass (hand-derived with the float32 step's elementwise work and Adagrad fused; rounds differently)", "auto", "auto", "autograd", "hand-derived", "one-pass");
    public static readonly Option<long?> EvalEvery = Opt.OptionalInteger("--eval-every", "evaluate and checkpoint every N samples (default: a tenth of the budget; 0: at the end only)", 0);
    public static readonly Option<string> Out = Opt.Text("--out", "the run directory (default: runs/<dataset>-j<J>-<algorithm>-seed<S>)", "DIR");
    public static readonly Option<string> Resume = Opt.Text("--resume", "continue the run in DIR from its checkpoint", "DIR");
    public static readonly Option<bool> Double = Opt.Flag("--double", "float64 parameters and arithmetic");
    public static readonly Option<string> WakeSleepOrderChoice = Opt.Choice("--wake-sleep-order", "wake-sleep's phases: gradients-first (both gradients before either update) or wake-update-first (the decoder moves, then fantasies from it: the paper's code; trained by autograd)", "gradients-first", "gradients-first", "wake-update-first");
    public static readonly Option<string> WakeSleepVariant = Opt.Choice("--wake-sleep-variant", "wake-sleep's recognition model and fantasies: the AEVB encoder with clipped fantasies, or the paper's code's (anglepy: log-variance 0.1 W h + b from zero, unclipped fantasies)", "shared-encoder", "shared-encoder", "anglepy");

    /// <summary>Adam's update as <see cref="AdamVariantChoice"/> names it (also read by vae reproduce iwae-table).</summary>
    public static Vae.AdamVariant AdamVariantOf(Arguments a) => a.Get(AdamVariantChoice) == "burda-code" ? Vae.AdamVariant.BurdaCode : Vae.AdamVariant.KingmaBa;
    /// <summary>The minibatch order as <see cref="MinibatchOrderChoice"/> names it (also read by vae reproduce iwae-table).</summary>
    public static Vae.MinibatchOrder MinibatchOrderOf(Arguments a) => a.Get(MinibatchOrderChoice) == "in-order" ? Vae.MinibatchOrder.InOrder : Vae.MinibatchOrder.WithReplacement;

    /// <summary>The initialisation as <see cref="InitializationChoice"/> names it (also read by vae reproduce iwae-table).</summary>
    public static ParameterInitialization InitializationOf(Arguments a) => a.Get(InitializationChoice) == "glorot-uniform" ? ParameterInitialization.GlorotUniform : ParameterInitialization.PaperNormal;
    /// <summary>The decoder's output bias as <see cref="OutputBiasChoice"/> names it (also read by vae reproduce iwae-table).</summary>
    public static DecoderOutputBias OutputBiasOf(Arguments a) => a.Get(OutputBiasChoice) == "training-mean-logit" ? DecoderOutputBias.TrainingMeanLogit : DecoderOutputBias.Drawn;

    /// <summary>The encoder's scale head as <see cref="ScaleHeadChoice"/> names it (also read by vae reproduce iwae-table).</summary>
    public static EncoderScaleHead ScaleHeadOf(Arguments a) => a.Get(ScaleHeadChoice) == "log-standard-deviation" ? EncoderScaleHead.LogStandardDeviation : EncoderScaleHead.LogVariance;

    /// <summary>The options that set up a run (a resumed run keeps them from its checkpoint), shared with vae sweep.</summary>
    public static readonly Option[] RunSettings = [Algorithm, NTrain, Latent, Hidden, HiddenLayers, Likelihood, Standardize, Objective, Estimator, K, EncoderGradient, StepSize, OptimizerChoice, Schedule, AdamBeta1, AdamBeta2, AdamEpsilon, AdamVariantChoice, WeightPrior, MinibatchOrderChoice, InitializationChoice, OutputBiasChoice, ScaleHeadChoice, Batch, WarmUp, Binarize, Common.Precision, Gradient, WakeSleepVariant, WakeSleepOrderChoice, Double, .. DataChoice.All];

    /// <summary><c>vae train</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        var command = new Command("train", "Train a model (AEVB, or a baseline) into a run directory; checkpoints at every evaluation and every 10 minutes, resumable");
        foreach (var o in (Option[])[.. RunSettings, Samples, Epochs, Common.Seed, Common.Threads, EvalEvery, Out, Resume]) command.Add(o);
        command.SetAction(p => Run(new Arguments(p), stdout, stderr, cancel));
        return command;
    }

    public static int Run(Arguments a, TextWriter stdout, TextWriter stderr, CancellationToken cancel)
    {
        if (a.Has(Samples) && a.Has(Epochs)) throw new UsageException("train: give --samples or --epochs, not both");
        int threads = a.Threads(stderr);

        Trainer trainer;
        DataChoice data;
        string outDir;
        if (a.Get(Resume) is string resume)
        {
            foreach (var o in (Option[])[.. RunSettings, Common.Seed, Out])
                if (a.Has(o) && o != Common.Cache && o != Common.FreyFace)
                    throw new UsageException($"train: {o.Name} cannot change when resuming (the run's settings are in its checkpoint)");
            string checkpoint = Trainer.CheckpointPath(resume);
            if (!File.Exists(checkpoint)) throw new UsageException($"--resume: {checkpoint}: no checkpoint to resume");
            trainer = Trainer.Resume(checkpoint);
            data = DataChoice.FromFields(VariationalAutoEncoder.ReadSettings(checkpoint), a.Get(Common.Cache), a.Get(Common.FreyFace));
            outDir = resume;
            // Without --threads the run keeps the thread count it last trained with (float32 sums round by thread count).
            if (!a.Has(Common.Threads) && Trainer.RecordedThreads(resume).Current is int recordedThreads && recordedThreads != threads)
            {
                stderr.WriteLine($"continuing with the run's {recordedThreads} threads (--threads changes it, and the record says so)");
                TorchRuntime.Threads = threads = recordedThreads;
            }
        }
        else
        {
            data = DataChoice.From(a);
            string algorithm = a.Get(Algorithm);
            var paper = data.Source.PaperModel();
            bool frey = paper.Likelihood == DecoderLikelihood.GaussianSigmoidMean;
            bool gaussian = a.Get(Likelihood) == "gaussian";
            if (a.Get(Standardize) && !gaussian) throw new UsageException("--standardize applies to --likelihood gaussian");
            if (a.Has(Likelihood) && data.Source.HasPaperLikelihood)
                throw new UsageException($"--likelihood applies to your own data (--dataset idx or npy); {data.Dataset} has its paper's decoder");
            int latent = (int)(a.Get(Latent) ?? paper.LatentDimensions);
            int hidden = (int)(a.Get(Hidden) ?? paper.HiddenUnits);
            bool adam = a.Get(OptimizerChoice) == "adam";
            if (!adam && a.Get(Schedule) != "constant") throw new UsageException("--schedule applies to --optimizer adam (Adagrad's step size is constant)");
            if (adam && a.Has(WarmUp)) throw new UsageException("--warm-up is Adagrad's; Adam has none");
            if (!adam && (a.Has(AdamBeta1) || a.Has(AdamBeta2) || a.Has(AdamEpsilon) || a.Has(AdamVariantChoice)))
                throw new UsageException("--adam-beta1, --adam-beta2, --adam-epsilon and --adam-variant apply to --optimizer adam");
            var optimizer = adam ? TrainingOptimizer.Adam : TrainingOptimizer.Adagrad;
            double? stepSize = a.Has(StepSize) ? a.StepSize(StepSize) : AevbOptions.DefaultStepSize(optimizer);
            bool autoStep = stepSize is null;
            if (adam && autoStep) throw new UsageException("--step-size auto is section 5's choice of Adagrad's step size; give Adam's as a number (default 0.001)");
            bool iwae = a.Get(Objective) == "iwae";
            if (iwae && a.Has(Estimator)) throw new UsageException("--estimator chooses an estimator of the lower bound; --objective iwae has its own");
            if (!iwae && a.Has(EncoderGradient)) throw new UsageException("--encoder-gradient applies to --objective iwae");
            if (algorithm != "aevb" && (iwae || a.Has(K))) throw new UsageException("--objective and --k apply to --algorithm aevb");
            var aevb = new AevbOptions
            {
                Objective = iwae ? TrainingObjective.ImportanceWeighted : TrainingObjective.Elbo,
                Estimator = a.Get(Estimator) == "a" ? SgvbEstimator.A : SgvbEstimator.B,
                SamplesPerDatapoint = (int)a.Get(K),
                EncoderGradient = a.Get(EncoderGradient) == "dreg" ? Vae.EncoderGradient.DoublyReparameterised : Vae.EncoderGradient.Reparameterised,
                StepSize = stepSize ?? AevbOptions.DefaultStepSize(optimizer),
                Optimizer = optimizer,
                Schedule = a.Get(Schedule) == "burda" ? StepSizeSchedule.Burda : StepSizeSchedule.Constant,
                AdamBeta1 = a.Get(AdamBeta1), AdamBeta2 = a.Get(AdamBeta2), AdamEpsilon = a.Get(AdamEpsilon),
                AdamVariant = AdamVariantOf(a),
                BatchSize = (int)a.Get(Batch),
                WeightPrior = a.Get(WeightPrior) == "on",
                MinibatchOrder = MinibatchOrderOf(a),
                Initialization = InitializationOf(a),
                DecoderOutputBias = OutputBiasOf(a),
                EncoderScaleHead = ScaleHeadOf(a),
                WarmUp = (int)a.Get(WarmUp),
                Seed = a.Get(Common.Seed),
                // Binarized MNIST is trained on a fresh binary draw per minibatch: its numbers are true log-likelihoods.
                Binarize = a.Get(Binarize) == "dynamic" || data.Source.TrainsBinarized,
                MixedPrecision = a.Get(Common.Precision) == "bfloat16",
                Gradient = a.Get(Gradient) switch
                {
                    "autograd" => GradientComputation.Autograd, "hand-derived" => GradientComputation.HandDerived, "one-pass" => GradientComputation.OnePass, _ => GradientComputation.Auto,
                },
                WakeSleepVariant = a.Get(WakeSleepVariant) == "anglepy" ? Vae.WakeSleepVariant.Anglepy : Vae.WakeSleepVariant.SharedEncoder,
                WakeSleepOrder = a.Get(WakeSleepOrderChoice) == "wake-update-first" ? Vae.WakeSleepOrder.WakeUpdateFirst : Vae.WakeSleepOrder.GradientsFirst,
            };
            if (algorithm == "mcem" && aevb.MinibatchOrder != Vae.MinibatchOrder.WithReplacement)
                throw new UsageException("--minibatch-order applies to AEVB and wake-sleep; Monte Carlo EM takes the whole training set at every iteration");
            if (aevb.DecoderOutputBias != DecoderOutputBias.Drawn && (frey || gaussian))
                throw new UsageException("--decoder-output-bias training-mean-logit applies to a Bernoulli decoder, not frey-face or --likelihood gaussian");
            if (aevb.EncoderScaleHead != EncoderScaleHead.LogVariance && (algorithm != "aevb" || !adam))
                throw new UsageException("--encoder-scale-head log-standard-deviation applies to --algorithm aevb with --optimizer adam (Burda et al.'s parameterisation)");
            if (aevb.WakeSleepOrder != Vae.WakeSleepOrder.GradientsFirst && algorithm != "wake-sleep")
                throw new UsageException("--wake-sleep-order applies to --algorithm wake-sleep");
            if (aevb.WakeSleepVariant != Vae.WakeSleepVariant.SharedEncoder && algorithm != "wake-sleep")
                throw new UsageException("--wake-sleep-variant applies to --algorithm wake-sleep");
            if (aevb.MixedPrecision && (algorithm != "aevb" || frey || gaussian || iwae || aevb.Estimator != SgvbEstimator.B || aevb.SamplesPerDatapoint != 1 || a.Get(Double) || a.Get(HiddenLayers) != 1 || adam))
                throw new UsageException("--precision bfloat16 applies to AEVB with estimator b, --k 1, one hidden layer, Adagrad and a Bernoulli decoder in float32 (mnist, idx or npy data)");
            if (data.Source.TrainsBinarized && a.Has(Binarize) && a.Get(Binarize) != "dynamic")
                throw new UsageException("--binarize: binarized-mnist is trained with dynamic binarisation (its test set is binary); use --dataset mnist for grey levels");
            if (aevb.Binarize && (frey || gaussian)) throw new UsageException("--binarize dynamic applies to [0, 1] data with a Bernoulli decoder, not frey-face or --likelihood gaussian");
            var trainingAlgorithm = TrainingAlgorithms.TryParse(algorithm, out var parsed) ? parsed : TrainingAlgorithm.Aevb;
            outDir = a.Get(Out) ?? Path.Combine("runs", Trainer.RunName(data.Dataset, trainingAlgorithm, latent, (int)a.Get(HiddenLayers), aevb));
            if (File.Exists(Trainer.CheckpointPath(outDir)))
                throw new UsageException($"--out: {outDir} already holds a run; continue it with --resume {outDir} or choose another --out");
            stderr.WriteLine($"loading {data.Dataset}");
            var set = data.Load(stderr);
            if (algorithm != "mcem" && aevb.BatchSize > set.Train.Count)
                throw new UsageException($"--batch: {aevb.BatchSize} exceeds the {set.Train.Count} training images of {set.Description}");
            var model = new VaeModelOptions
            {
                InputDimension = set.Train.Dimension, LatentDimensions = latent, HiddenUnits = hidden, HiddenLayers = (int)a.Get(HiddenLayers),
                Likelihood = data.Source.HasPaperLikelihood ? paper.Likelihood : gaussian ? DecoderLikelihood.Gaussian : DecoderLikelihood.Bernoulli,
                DoublePrecision = a.Get(Double),
            };
            Trainer Create(AevbOptions o) => algorithm switch
            {
                "aevb" => new AevbTrainer(model, o, set.Description),
                "wake-sleep" => new WakeSleepTrainer(model, o, set.Description),
                _ => new McemTrainer(model, o, set.Description),
            };
            if (autoStep)
            {
                // Section 5: the step size from {0.01, 0.02, 0.1} by the training set's measure after the first iterations.
                long trial = StepSizeSelection.TrialSamples(algorithm == "mcem" ? TrainingAlgorithm.MonteCarloEm : TrainingAlgorithm.Aevb, set.Train.Count);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"choosing Adagrad's step size from {string.Join(", ", StepSizeSelection.PaperCandidates)} by the {(algorithm == "mcem" ? "training log-likelihood (Appendix D, first 100 training images)" : "training bound")} after {trial:N0} samples each"));
                var choice = StepSizeSelection.Choose(Create, aevb, set.Train, trialSamples: trial, cancellationToken: cancel);
                foreach (var t in choice.Trials)
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  step size {t.StepSize}: training bound {t.TrainingBound:F2}"));
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"chosen step size: {choice.StepSize}"));
                aevb = choice.Options;
            }
            trainer = Create(aevb);
            return Train(trainer, set, data, outDir, a, threads, stdout, stderr, cancel);
        }
        stderr.WriteLine($"resuming {outDir} at {trainer.SamplesSeen:N0} samples; loading {data.Dataset}");
        // The run keeps the budget and the evaluation interval it was started with unless --samples or --eval-every is given again.
        var recorded = Trainer.RecordedSchedule(outDir);
        return Train(trainer, data.Load(stderr), data, outDir, a, threads, stdout, stderr, cancel, recorded.EvaluateEvery, recorded.TotalSamples);
    }

    static int Train(Trainer trainer, DataSet set, DataChoice data, string outDir, Arguments a, int threads, TextWriter stdout, TextWriter stderr, CancellationToken cancel,
                     long? recordedEvalEvery = null, long? recordedSamples = null)
    {
        using var owned = trainer;
        long samples = a.Get(Epochs) is long epochs ? epochs * set.Train.Count : a.Get(Samples) ?? recordedSamples ?? DefaultSamples;
        long evalEvery = a.Get(EvalEvery) ?? recordedEvalEvery ?? Math.Max(trainer.Options.BatchSize, samples / 10);
        var o = trainer.Options;
        string binarize = !trainer.ModelOptions.Likelihood.Equals(DecoderLikelihood.Bernoulli) ? "continuous values"
            : o.Binarize ? "dynamically binarised" : "grey levels";
        string method = trainer.Algorithm switch
        {
            TrainingAlgorithm.Aevb => o.Objective == TrainingObjective.ImportanceWeighted
                ? $"AEVB (importance-weighted bound, K = {o.SamplesPerDatapoint}{(o.EncoderGradient == Vae.EncoderGradient.DoublyReparameterised ? ", doubly reparameterised encoder gradient" : "")})"
                : $"AEVB (estimator {o.Estimator}{(o.SamplesPerDatapoint > 1 ? $", L = {o.SamplesPerDatapoint}" : "")})",
            TrainingAlgorithm.WakeSleep => o.WakeSleepVariant == Vae.WakeSleepVariant.Anglepy ? "wake-sleep (anglepy's recognition model and fantasies)" : "wake-sleep",
            _ => "Monte Carlo EM",
        };
        stdout.WriteLine($"{method} on {set.Description} ({binarize}); J = {trainer.ModelOptions.LatentDimensions}, {HiddenDescription(trainer.ModelOptions)}, " +
                         $"M = {o.BatchSize}, {OptimizerDescription(o)}, {trainer.GradientPath} gradient, seed {o.Seed}, {threads} threads; budget {samples:N0} samples; run directory {outDir}");
        bool mcem = trainer.Algorithm == TrainingAlgorithm.MonteCarloEm;
        stdout.WriteLine(mcem ? $"{"samples",12} {"seconds",9} {"train log p(x)",14} {"test log p(x)",14}   (Appendix D estimates, first 100 images)"
                              : $"{"samples",12} {"seconds",9} {"train bound",12} {"test bound",12}");
        var fields = data.Source.CheckpointFields;
        var hold = Vae.Experiments.EvaluationHold.For(outDir, cancel); // a test hook (VAE_HOLD_AFTER_EVALUATION)
        var summary = trainer.Fit(set.Train, new TrainingOptions
        {
            TotalSamples = samples, EvaluateEvery = evalEvery, TestData = set.Test, RunDirectory = outDir, CheckpointFields = fields,
            // A resumed run keeps the standardisation its checkpoint holds.
            StandardizeInputs = a.Get(Standardize),
            Evaluated = r =>
            {
                ProgressBar.Clear(stderr);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.SamplesSeen,12:N0} {r.Seconds,9:F1} {r.TrainBound,12:F2} {r.TestBound,12:F2}"));
                hold?.Invoke(r);
            },
        }, new ProgressBar(stderr), cancel);
        ProgressBar.Clear(stderr);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(summary.Cancelled ? "interrupted" : "finished")} at {summary.SamplesSeen:N0} samples: {summary.SamplesPerSecond:F0} samples/s over {summary.Seconds:F1} s; checkpoint {Trainer.CheckpointPath(outDir)}"));
        if (summary.Evaluations.Count > 0)
        {
            var last = summary.Evaluations[^1];
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"final bound per datapoint ({binarize}): train {last.TrainBound:F2}, test {last.TestBound:F2} nats"));
        }
        return summary.Cancelled ? VaeCommand.Interrupted : VaeCommand.Ok;
    }

    /// <summary>"Adagrad 0.02", or "Adam 0.001 (Burda's schedule)".</summary>
    static string OptimizerDescription(AevbOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"{o.Optimizer} {o.StepSize}{(o.Schedule == StepSizeSchedule.Burda ? " (Burda's schedule)" : "")}");

    /// <summary>"500 hidden units", or "2 tanh layers of 200 hidden units".</summary>
    static string HiddenDescription(VaeModelOptions m) =>
        (m.HiddenLayers == 1 ? "" : $"{m.HiddenLayers} tanh layers of ") + $"{m.HiddenUnits} hidden units";
}

/// <summary>A one-line progress bar with samples/s and the running bound (redrawn on a terminal, a line every 10 s otherwise).</summary>
sealed class ProgressBar(TextWriter writer) : IProgress<TrainingProgress>
{
    static readonly bool Interactive = !Console.IsErrorRedirected;
    DateTime _lastLine = DateTime.MinValue;

    public void Report(TrainingProgress p)
    {
        double fraction = p.TotalSamples == 0 ? 1 : Math.Min(1, (double)p.SamplesSeen / p.TotalSamples);
        int filled = (int)(fraction * 30);
        string line = string.Create(CultureInfo.InvariantCulture,
            $"[{new string('#', filled)}{new string('.', 30 - filled)}] {p.SamplesSeen:N0}/{p.TotalSamples:N0} {p.SamplesPerSecond:F0} samples/s bound {p.RunningBound:F2}");
        if (Interactive) writer.Write("\r" + line + "   ");
        else if (DateTime.UtcNow - _lastLine > TimeSpan.FromSeconds(10)) { writer.WriteLine(line); _lastLine = DateTime.UtcNow; }
    }

    public static void Clear(TextWriter writer)
    {
        if (Interactive) writer.Write("\r" + new string(' ', 110) + "\r");
    }
}
