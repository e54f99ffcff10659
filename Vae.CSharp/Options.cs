namespace Vae;

/// <summary>The decoder's likelihood p(x|z) (Appendix C).</summary>
public enum DecoderLikelihood
{
    /// <summary>Bernoulli MLP: binary or [0, 1] data such as MNIST.</summary>
    Bernoulli,
    /// <summary>Gaussian MLP with an unconstrained mean.</summary>
    Gaussian,
    /// <summary>Gaussian MLP whose mean is squashed into (0, 1) by a sigmoid (the paper's Frey Face decoder).</summary>
    GaussianSigmoidMean,
    /// <summary>Linear-Gaussian decoder N(W z + b, diag sigma^2) (factor analysis, probabilistic PCA): no hidden layer,
    /// and its exact log-likelihood is known (<see cref="VariationalAutoEncoder.ExactLogLikelihood"/>).</summary>
    LinearGaussian,
}

/// <summary>How a training step computes its gradient.</summary>
public enum GradientComputation
{
    /// <summary>The hand-derived gradient (backpropagation written out over the parameter vector) wherever it covers the configuration (AEVB with
    /// estimator B and L = 1 and wake-sleep, with one-layer MLP decoders and Adagrad; AEVB with estimator A or the
    /// importance-weighted bound, a Bernoulli decoder of any depth and either optimiser), else autograd.</summary>
    Auto,
    /// <summary>libtorch's autograd through the algorithm's objective, for every configuration.</summary>
    Autograd,
    /// <summary>The hand-derived gradient; a configuration it does not cover is refused.</summary>
    HandDerived,
    /// <summary>The hand-derived AEVB step with the work between its float32 matrix multiplies done in one pass per
    /// layer and Adagrad's one-pass update, as the bfloat16 step does (estimator B, L = 1, a Bernoulli decoder, float32;
    /// other settings are refused). Faster; it rounds differently from <see cref="HandDerived"/>, so runs recorded with
    /// that do not replay bit for bit with this, and <see cref="Auto"/> never chooses it.</summary>
    OnePass,
}

/// <summary>The order in which minibatches take the training data.</summary>
public enum MinibatchOrder
{
    /// <summary>M datapoints drawn uniformly with replacement at every step (the paper's code).</summary>
    WithReplacement,
    /// <summary>Consecutive blocks of M datapoints in the data's own order, the same every pass, continuing from the
    /// start when the data ends (Burda et al.'s code: no shuffling).</summary>
    InOrder,
}

/// <summary>How a run's parameters are first drawn.</summary>
public enum ParameterInitialization
{
    /// <summary>Every weight and bias from N(0, σ²), σ = <see cref="VaeModelOptions.InitialStandardDeviation"/> (the paper: 0.01).</summary>
    PaperNormal,
    /// <summary>Every weight matrix uniform on ±√(6 / (fan-in + fan-out)) (Glorot and Bengio 2010), every bias 0: Burda
    /// et al.'s code.</summary>
    GlorotUniform,
}

/// <summary>The decoder's output bias at the start of training.</summary>
public enum DecoderOutputBias
{
    /// <summary>As the initialisation drew it (the paper's).</summary>
    Drawn,
    /// <summary>The logit of the training data's per-pixel mean, clipped to [0.001, 0.999], set before the first step
    /// (Burda et al.'s code); Bernoulli decoders only.</summary>
    TrainingMeanLogit,
}

/// <summary>What the encoder's scale head computes, in the coordinates the optimiser steps in. The model always stores
/// log σ² = W h + b, so evaluation and export never see the choice.</summary>
public enum EncoderScaleHead
{
    /// <summary>log σ² = W h + b, the optimiser stepping on W and b (the paper's code).</summary>
    LogVariance,
    /// <summary>log σ = W′ h + b′ (Burda et al.'s code: σ = exp of a linear layer): the model keeps W = 2 W′ and b = 2 b′,
    /// whose initial draws are doubled, and Adam steps on W′ and b′. AEVB with Adam only. The weight prior, when on,
    /// stays on the model's W (Burda et al. train without one).</summary>
    LogStandardDeviation,
}

/// <summary>When wake-sleep's sleep phase draws its fantasies.</summary>
public enum WakeSleepOrder
{
    /// <summary>Both phases' gradients before either update, from the same decoder.</summary>
    GradientsFirst,
    /// <summary>The paper's code (anglepy's <c>step_wakesleep</c>): the wake phase updates the decoder, then the sleep
    /// phase draws its fantasies from the updated decoder. Trained by autograd.</summary>
    WakeUpdateFirst,
}

/// <summary>How wake-sleep (the paper's baseline) parameterises its recognition model and draws its fantasies.</summary>
public enum WakeSleepVariant
{
    /// <summary>The AEVB encoder as it is (Appendix C.2, every parameter drawn from N(0, 0.01²)); the Frey Face decoder's
    /// Gaussian fantasies clipped to [0, 1].</summary>
    SharedEncoder,
    /// <summary>The paper's code (anglepy's <c>MLBN_Inverse</c> and <c>MLBN</c>): log σ² = 0.1·W h + b with W and b zero
    /// at the start (the model stores 0.1·W, so it evaluates and exports as any other), Gaussian fantasies unclipped,
    /// Bernoulli fantasy probabilities held in [0.001, 0.999].</summary>
    Anglepy,
}

/// <summary>What AEVB ascends.</summary>
public enum TrainingObjective
{
    /// <summary>The variational lower bound (eq. 3), estimated by <see cref="AevbOptions.Estimator"/> with L samples per
    /// datapoint (averaged: Burda et al.'s "VAE with k samples" at L = k).</summary>
    Elbo,
    /// <summary>The importance-weighted bound with K = <see cref="AevbOptions.SamplesPerDatapoint"/> samples (Burda et
    /// al. 2015, eq. 8): log (1/K) Σ_k p(x, z_k) / q(z_k|x), tighter than the ELBO and rising with K towards log p(x).</summary>
    ImportanceWeighted,
}

/// <summary>How the encoder's gradient of the importance-weighted bound is estimated.</summary>
public enum EncoderGradient
{
    /// <summary>The gradient of the estimate itself (Burda et al.).</summary>
    Reparameterised,
    /// <summary>The doubly reparameterised estimator (Tucker et al. 2018): the same expectation, with a variance that
    /// does not grow as the plain one's does with K.</summary>
    DoublyReparameterised,
}

/// <summary>The optimiser of a training run.</summary>
public enum TrainingOptimizer
{
    /// <summary>Adagrad as the paper's code uses it (section 5): <see cref="AevbOptions.StepSize"/>,
    /// <see cref="AevbOptions.WarmUp"/> and <see cref="AevbOptions.Regulariser"/>.</summary>
    Adagrad,
    /// <summary>Adam (Kingma and Ba 2015), as Burda et al. (2015) train: <see cref="AevbOptions.StepSize"/>,
    /// <see cref="AevbOptions.AdamBeta1"/>, <see cref="AevbOptions.AdamBeta2"/>, <see cref="AevbOptions.AdamEpsilon"/> and
    /// <see cref="AevbOptions.Schedule"/>.</summary>
    Adam,
}

/// <summary>Which update Adam makes.</summary>
public enum AdamVariant
{
    /// <summary>Kingma and Ba (2015), Algorithm 1: both moments start at zero, and each step moves by the moments that
    /// include its gradient.</summary>
    KingmaBa,
    /// <summary>Burda et al.'s code (optimizers.py): the second moments start at 1, and each step moves by the moments
    /// of the gradients before it (Theano applies the updates at once), so the first step moves nothing.</summary>
    BurdaCode,
}

/// <summary>How Adam's step size changes over training.</summary>
public enum StepSizeSchedule
{
    /// <summary><see cref="AevbOptions.StepSize"/> throughout.</summary>
    Constant,
    /// <summary>Burda et al. (2015): stage i = 0, ..., 7 runs 3^i passes over the training set at the step size times
    /// 10^(-i/7) (as their code rounds it: 1, 0.72, 0.52, 0.37, 0.27, 0.19, 0.14, 0.1), 3280 passes in all.</summary>
    Burda,
}

/// <summary>Which SGVB estimator of the lower bound.</summary>
public enum SgvbEstimator
{
    /// <summary>The generic estimator L^A (eq. 6).</summary>
    A,
    /// <summary>The estimator L^B with the analytic KL divergence (eq. 7).</summary>
    B,
}

/// <summary>The architecture of a variational auto-encoder. The defaults are the paper's MNIST model.</summary>
public sealed class VaeModelOptions
{
    /// <summary>Values per datapoint (784 for MNIST, 560 for Frey Face).</summary>
    public int InputDimension { get; init; } = 784;
    /// <summary>Hidden units of every MLP (500 for MNIST, 200 for Frey Face).</summary>
    public int HiddenUnits { get; init; } = 500;
    /// <summary>Tanh layers of <see cref="HiddenUnits"/> units in every MLP: 1 in the paper (Appendix C), 2 in Burda et
    /// al. (2015). Deeper networks train with autograd (the hand-derived steps are written for one layer).</summary>
    public int HiddenLayers { get; init; } = 1;
    /// <summary>Latent dimensions J.</summary>
    public int LatentDimensions { get; init; } = 20;
    /// <summary>The decoder's likelihood.</summary>
    public DecoderLikelihood Likelihood { get; init; } = DecoderLikelihood.Bernoulli;
    /// <summary>Compute in float64 instead of float32.</summary>
    public bool DoublePrecision { get; init; }
    /// <summary>Standard deviation of the initial parameters (the paper: 0.01).</summary>
    public double InitialStandardDeviation { get; init; } = 0.01;

    /// <summary>The paper's Frey Face model: 560 inputs, 200 hidden units, a sigmoid-mean Gaussian decoder.</summary>
    public static VaeModelOptions FreyFace(int latentDimensions = 10) => new()
    {
        InputDimension = 560, HiddenUnits = 200, LatentDimensions = latentDimensions, Likelihood = DecoderLikelihood.GaussianSigmoidMean,
    };

    internal Vae.Core.ModelConfig ToCore() => new(
        InputDimension, HiddenUnits, LatentDimensions,
        Likelihood switch
        {
            DecoderLikelihood.Bernoulli => Vae.Core.Likelihood.Bernoulli,
            DecoderLikelihood.Gaussian => Vae.Core.Likelihood.Gaussian,
            DecoderLikelihood.GaussianSigmoidMean => Vae.Core.Likelihood.GaussianSigmoidMean,
            DecoderLikelihood.LinearGaussian => Vae.Core.Likelihood.LinearGaussian,
            _ => throw new ArgumentOutOfRangeException(nameof(Likelihood), Likelihood, "likelihood: expected a DecoderLikelihood value"),
        },
        DoublePrecision ? TorchSharp.torch.float64 : TorchSharp.torch.float32,
        InitialStandardDeviation, HiddenLayers);

    internal static VaeModelOptions FromCore(Vae.Core.ModelConfig c) => new()
    {
        InputDimension = c.InputDim, HiddenUnits = c.HiddenUnits, HiddenLayers = c.HiddenLayers, LatentDimensions = c.LatentDim,
        Likelihood = c.Likelihood.IsBernoulli ? DecoderLikelihood.Bernoulli : c.Likelihood.IsGaussian ? DecoderLikelihood.Gaussian
            : c.Likelihood.IsGaussianSigmoidMean ? DecoderLikelihood.GaussianSigmoidMean : DecoderLikelihood.LinearGaussian,
        DoublePrecision = c.DType == TorchSharp.torch.float64, InitialStandardDeviation = c.InitStd,
    };
}

/// <summary>Settings of AEVB (Algorithm 1). The defaults are the paper's: estimator B, L = 1, M = 100,
/// Adagrad (step size 0.02, 100-minibatch warm-up, regulariser 1e-8), the N(0, I) weight prior, grey levels.</summary>
public sealed class AevbOptions
{
    /// <summary>What AEVB ascends: the lower bound (the paper) or the importance-weighted bound.</summary>
    public TrainingObjective Objective { get; init; }
    /// <summary>The SGVB estimator of the lower bound (the importance-weighted objective has its own, and takes B).</summary>
    public SgvbEstimator Estimator { get; init; } = SgvbEstimator.B;
    /// <summary>Samples of the noise per datapoint: L of the lower bound's estimators, or K of the importance-weighted
    /// bound.</summary>
    public int SamplesPerDatapoint { get; init; } = 1;
    /// <summary>The encoder's gradient of the importance-weighted bound; <see cref="EncoderGradient.DoublyReparameterised"/>
    /// needs <see cref="TrainingObjective.ImportanceWeighted"/>.</summary>
    public EncoderGradient EncoderGradient { get; init; }
    /// <summary>Minibatch size M.</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>The optimiser: Adagrad as the paper, or Adam (Burda et al. 2015).</summary>
    public TrainingOptimizer Optimizer { get; init; }
    /// <summary>The optimiser's global step size (Adagrad: the paper chose from 0.01, 0.02 and 0.1; Adam: Burda et al.
    /// start at 0.001).</summary>
    public double StepSize { get; init; } = 0.02;

    /// <summary>The step size a run of <paramref name="optimizer"/> takes unless told otherwise: Adagrad 0.02 (the middle
    /// of section 5's three), Adam 0.001 (Burda et al.'s first).</summary>
    public static double DefaultStepSize(TrainingOptimizer optimizer) => optimizer switch
    {
        TrainingOptimizer.Adagrad => 0.02,
        TrainingOptimizer.Adam => 0.001,
        _ => throw new ArgumentOutOfRangeException(nameof(optimizer), optimizer, "optimizer: expected Adagrad or Adam"),
    };
    /// <summary>Minibatches of squared gradients accumulated before Adagrad's first update.</summary>
    public int WarmUp { get; init; } = 100;
    /// <summary>Adagrad's regulariser under the square root.</summary>
    public double Regulariser { get; init; } = 1e-8;
    /// <summary>Adam's decay of its moving average of gradients (Burda et al.: 0.9).</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    /// <summary>Adam's decay of its moving average of squared gradients (Burda et al.: 0.999).</summary>
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary>Added to the root of Adam's squared-gradient average (Burda et al.: 1e-4).</summary>
    public double AdamEpsilon { get; init; } = 1e-4;
    /// <summary>Adam's update: Kingma and Ba's (the default, as Burda et al.'s text), or their code's.</summary>
    public AdamVariant AdamVariant { get; init; }
    /// <summary>How Adam's step size changes over training (Adagrad's is constant).</summary>
    public StepSizeSchedule Schedule { get; init; }
    /// <summary>Use the N(0, I) prior on weights (not biases), scaled by M/N.</summary>
    public bool WeightPrior { get; init; } = true;
    /// <summary>Binarise each minibatch (x ~ Bernoulli(grey level)) instead of using grey levels.</summary>
    public bool Binarize { get; init; }
    /// <summary>Matrix multiplies in bfloat16, with float32 master weights, gradients and Adagrad state (opt-in; fast on
    /// CPUs with AVX-512 BF16 or AMX). Available for estimator B with L = 1 and a Bernoulli decoder in float32.</summary>
    public bool MixedPrecision { get; init; }
    /// <summary>How the steps compute their gradient: <see cref="GradientComputation.Auto"/> (the hand-derived step
    /// wherever it covers the configuration), or one of the two explicitly. The run reports the one it uses
    /// (<see cref="Trainer.GradientPath"/>, options.txt).</summary>
    public GradientComputation Gradient { get; init; }
    /// <summary>Wake-sleep's recognition model and fantasies (<see cref="WakeSleepVariant.SharedEncoder"/> by default);
    /// AEVB and Monte Carlo EM refuse <see cref="WakeSleepVariant.Anglepy"/>.</summary>
    public WakeSleepVariant WakeSleepVariant { get; init; }
    /// <summary>Wake-sleep's phase order (<see cref="WakeSleepOrder.GradientsFirst"/> by default); AEVB and Monte Carlo
    /// EM refuse <see cref="WakeSleepOrder.WakeUpdateFirst"/>.</summary>
    public WakeSleepOrder WakeSleepOrder { get; init; }
    /// <summary>How minibatches take the training data (<see cref="MinibatchOrder.WithReplacement"/>, the paper's, by
    /// default); Monte Carlo EM, which takes all of it, refuses <see cref="MinibatchOrder.InOrder"/>.</summary>
    public MinibatchOrder MinibatchOrder { get; init; }
    /// <summary>How the parameters are first drawn (<see cref="ParameterInitialization.PaperNormal"/>, the paper's, by
    /// default).</summary>
    public ParameterInitialization Initialization { get; init; }
    /// <summary>The decoder's output bias before the first step (<see cref="DecoderOutputBias.Drawn"/>, the paper's, by
    /// default); a Gaussian decoder refuses <see cref="DecoderOutputBias.TrainingMeanLogit"/>.</summary>
    public DecoderOutputBias DecoderOutputBias { get; init; }
    /// <summary>The coordinates of the encoder's scale head (<see cref="EncoderScaleHead.LogVariance"/>, the paper's, by
    /// default); wake-sleep, Monte Carlo EM and Adagrad refuse <see cref="EncoderScaleHead.LogStandardDeviation"/>.</summary>
    public EncoderScaleHead EncoderScaleHead { get; init; }
    /// <summary>The seed of initialisation and of all sampling during training.</summary>
    public long Seed { get; init; }

    internal void Validate()
    {
        if (!Enum.IsDefined(WakeSleepVariant)) throw new ArgumentOutOfRangeException(nameof(WakeSleepVariant), WakeSleepVariant, "wake-sleep variant: expected SharedEncoder or Anglepy");
        if (!Enum.IsDefined(Objective)) throw new ArgumentOutOfRangeException(nameof(Objective), Objective, "objective: expected Elbo or ImportanceWeighted");
        if (!Enum.IsDefined(EncoderGradient)) throw new ArgumentOutOfRangeException(nameof(EncoderGradient), EncoderGradient, "encoder gradient: expected Reparameterised or DoublyReparameterised");
        if (!Enum.IsDefined(Estimator)) throw new ArgumentOutOfRangeException(nameof(Estimator), Estimator, "estimator: expected A or B");
        if (Objective == TrainingObjective.ImportanceWeighted && Estimator != SgvbEstimator.B)
            throw new ArgumentException("estimator: the importance-weighted objective has its own estimator; leave Estimator at B", nameof(Estimator));
        if (EncoderGradient == EncoderGradient.DoublyReparameterised && Objective != TrainingObjective.ImportanceWeighted)
            throw new ArgumentException("encoder gradient: DoublyReparameterised is a gradient of the importance-weighted objective; set Objective = ImportanceWeighted", nameof(EncoderGradient));
        if (!Enum.IsDefined(Gradient)) throw new ArgumentOutOfRangeException(nameof(Gradient), Gradient, "gradient: expected Auto, Autograd or HandDerived");
        if (SamplesPerDatapoint < 1) throw new ArgumentOutOfRangeException(nameof(SamplesPerDatapoint), SamplesPerDatapoint, "samples per datapoint: expected at least 1");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size: expected at least 1");
        if (!(StepSize > 0) || !double.IsFinite(StepSize)) throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, "step size: expected a positive number");
        if (WarmUp < 0) throw new ArgumentOutOfRangeException(nameof(WarmUp), WarmUp, "warm-up: expected at least 0");
        if (!(Regulariser >= 0)) throw new ArgumentOutOfRangeException(nameof(Regulariser), Regulariser, "regulariser: expected a non-negative number");
        if (!Enum.IsDefined(Optimizer)) throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "optimizer: expected Adagrad or Adam");
        if (!Enum.IsDefined(Schedule)) throw new ArgumentOutOfRangeException(nameof(Schedule), Schedule, "schedule: expected Constant or Burda");
        if (Optimizer == TrainingOptimizer.Adagrad && Schedule != StepSizeSchedule.Constant)
            throw new ArgumentException("schedule: Adagrad's step size is constant; set Optimizer = Adam for a schedule", nameof(Schedule));
        if (!Enum.IsDefined(MinibatchOrder)) throw new ArgumentOutOfRangeException(nameof(MinibatchOrder), MinibatchOrder, "minibatch order: expected WithReplacement or InOrder");
        if (!Enum.IsDefined(Initialization)) throw new ArgumentOutOfRangeException(nameof(Initialization), Initialization, "initialization: expected PaperNormal or GlorotUniform");
        if (!Enum.IsDefined(DecoderOutputBias)) throw new ArgumentOutOfRangeException(nameof(DecoderOutputBias), DecoderOutputBias, "decoder output bias: expected Drawn or TrainingMeanLogit");
        if (!Enum.IsDefined(WakeSleepOrder)) throw new ArgumentOutOfRangeException(nameof(WakeSleepOrder), WakeSleepOrder, "wake-sleep order: expected GradientsFirst or WakeUpdateFirst");
        if (!Enum.IsDefined(EncoderScaleHead)) throw new ArgumentOutOfRangeException(nameof(EncoderScaleHead), EncoderScaleHead, "encoder scale head: expected LogVariance or LogStandardDeviation");
        if (Optimizer != TrainingOptimizer.Adam && EncoderScaleHead != EncoderScaleHead.LogVariance)
            throw new ArgumentException("EncoderScaleHead: the log-σ head is Burda et al.'s parameterisation under Adam; set Optimizer = Adam", nameof(EncoderScaleHead));
        if (!Enum.IsDefined(AdamVariant)) throw new ArgumentOutOfRangeException(nameof(AdamVariant), AdamVariant, "Adam's variant: expected KingmaBa or BurdaCode");
        if (Optimizer != TrainingOptimizer.Adam && AdamVariant != AdamVariant.KingmaBa)
            throw new ArgumentException("AdamVariant: Adam's update; set Optimizer = Adam", nameof(AdamVariant));
        if (!(AdamBeta1 >= 0 && AdamBeta1 < 1)) throw new ArgumentOutOfRangeException(nameof(AdamBeta1), AdamBeta1, "Adam's beta1: expected a number in [0, 1)");
        if (!(AdamBeta2 >= 0 && AdamBeta2 < 1)) throw new ArgumentOutOfRangeException(nameof(AdamBeta2), AdamBeta2, "Adam's beta2: expected a number in [0, 1)");
        if (!(AdamEpsilon > 0) || !double.IsFinite(AdamEpsilon)) throw new ArgumentOutOfRangeException(nameof(AdamEpsilon), AdamEpsilon, "Adam's epsilon: expected a positive number");
    }

    /// <summary>The core's optimiser settings with the given step size.</summary>
    Vae.Core.OptimizerConfig CoreOptimizer(double stepSize) => Optimizer == TrainingOptimizer.Adam
        ? Vae.Core.OptimizerConfig.NewAdamOptimizer(new Vae.Core.AdamConfig(stepSize, AdamBeta1, AdamBeta2, AdamEpsilon,
            Schedule == StepSizeSchedule.Burda ? Vae.Core.StepSizeSchedule.BurdaStages : Vae.Core.StepSizeSchedule.ConstantStepSize,
            AdamVariant == AdamVariant.BurdaCode ? Vae.Core.AdamVariant.BurdaCode : Vae.Core.AdamVariant.KingmaBa))
        : Vae.Core.OptimizerConfig.NewAdagradOptimizer(new Vae.Core.AdagradConfig(stepSize, WarmUp, Regulariser));

    internal Vae.Core.LearnerConfig ToCore() => ToCore(StepSize);

    Vae.Core.LearnerConfig ToCore(double stepSize) => new(
        Objective == TrainingObjective.ImportanceWeighted ? Vae.Core.EstimatorKind.Iwae : Estimator == SgvbEstimator.A ? Vae.Core.EstimatorKind.A : Vae.Core.EstimatorKind.B,
        SamplesPerDatapoint, BatchSize, CoreOptimizer(stepSize), WeightPrior, Binarize, MixedPrecision,
        Gradient switch
        {
            GradientComputation.Autograd => Vae.Core.GradientChoice.Autograd,
            GradientComputation.HandDerived => Vae.Core.GradientChoice.HandDerived,
            GradientComputation.OnePass => Vae.Core.GradientChoice.OnePass,
            _ => Vae.Core.GradientChoice.Auto,
        },
        WakeSleepVariant == WakeSleepVariant.Anglepy ? Vae.Core.WakeSleepVariant.Anglepy : Vae.Core.WakeSleepVariant.SharedEncoder,
        EncoderGradient == EncoderGradient.DoublyReparameterised ? Vae.Core.EncoderGradient.DoublyReparameterised : Vae.Core.EncoderGradient.Reparameterised,
        MinibatchOrder == MinibatchOrder.InOrder ? Vae.Core.MinibatchOrder.InOrder : Vae.Core.MinibatchOrder.WithReplacement,
        Initialization == ParameterInitialization.GlorotUniform ? Vae.Core.Initialization.GlorotUniform : Vae.Core.Initialization.PaperNormal,
        DecoderOutputBias == DecoderOutputBias.TrainingMeanLogit ? Vae.Core.DecoderOutputBias.TrainingMeanLogit : Vae.Core.DecoderOutputBias.Drawn,
        EncoderScaleHead == EncoderScaleHead.LogStandardDeviation ? Vae.Core.EncoderScaleHead.LogStandardDeviation : Vae.Core.EncoderScaleHead.LogVariance,
        WakeSleepOrder == WakeSleepOrder.WakeUpdateFirst ? Vae.Core.WakeSleepOrder.WakeUpdateFirst : Vae.Core.WakeSleepOrder.GradientsFirst);

    /// <summary>These options with another step size (the rest unchanged).</summary>
    internal AevbOptions WithStepSize(double stepSize) => FromCore(ToCore(stepSize), Seed);

    internal static AevbOptions FromCore(Vae.Core.LearnerConfig c, long seed)
    {
        // The optimiser's own settings; the other optimiser's keep their defaults.
        var adagrad = (c.Optimizer as Vae.Core.OptimizerConfig.AdagradOptimizer)?.Item;
        var adam = (c.Optimizer as Vae.Core.OptimizerConfig.AdamOptimizer)?.Item;
        var defaults = new AevbOptions();
        return new()
        {
            Objective = c.Estimator.IsIwae ? TrainingObjective.ImportanceWeighted : TrainingObjective.Elbo,
            Estimator = c.Estimator.IsA ? SgvbEstimator.A : SgvbEstimator.B,
            EncoderGradient = c.EncoderGradient.IsDoublyReparameterised ? EncoderGradient.DoublyReparameterised : EncoderGradient.Reparameterised,
            SamplesPerDatapoint = c.Samples, BatchSize = c.BatchSize, StepSize = c.Optimizer.StepSize,
            Optimizer = adam is null ? TrainingOptimizer.Adagrad : TrainingOptimizer.Adam,
            WarmUp = adagrad?.WarmUp ?? defaults.WarmUp, Regulariser = adagrad?.Regulariser ?? defaults.Regulariser,
            AdamBeta1 = adam?.Beta1 ?? defaults.AdamBeta1, AdamBeta2 = adam?.Beta2 ?? defaults.AdamBeta2, AdamEpsilon = adam?.Epsilon ?? defaults.AdamEpsilon,
            Schedule = adam is { } a && a.Schedule.IsBurdaStages ? StepSizeSchedule.Burda : StepSizeSchedule.Constant,
            AdamVariant = adam is { } b && b.Variant.IsBurdaCode ? AdamVariant.BurdaCode : AdamVariant.KingmaBa,
            WeightPrior = c.WeightPrior, Binarize = c.Binarize, MixedPrecision = c.MixedPrecision, Seed = seed,
            Gradient = c.Gradient.IsAutograd ? GradientComputation.Autograd : c.Gradient.IsHandDerived ? GradientComputation.HandDerived
                : c.Gradient.IsOnePass ? GradientComputation.OnePass : GradientComputation.Auto,
            WakeSleepVariant = c.WakeSleep.IsAnglepy ? WakeSleepVariant.Anglepy : WakeSleepVariant.SharedEncoder,
            MinibatchOrder = c.Order.IsInOrder ? MinibatchOrder.InOrder : MinibatchOrder.WithReplacement,
            Initialization = c.Initialization.IsGlorotUniform ? ParameterInitialization.GlorotUniform : ParameterInitialization.PaperNormal,
            DecoderOutputBias = c.OutputBias.IsTrainingMeanLogit ? DecoderOutputBias.TrainingMeanLogit : DecoderOutputBias.Drawn,
            EncoderScaleHead = c.ScaleHead.IsLogStandardDeviation ? EncoderScaleHead.LogStandardDeviation : EncoderScaleHead.LogVariance,
            WakeSleepOrder = c.WakeSleepOrder.IsWakeUpdateFirst ? WakeSleepOrder.WakeUpdateFirst : WakeSleepOrder.GradientsFirst,
        };
    }
}
