/** The FER2013 class names, in a module of their own so that light modules need not import the data pipeline. */

/** The seven FER2013 classes, sorted (the ImageFolder order of the Kaggle layout). */
export const CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"] as const;
