# Sourced by the training and evaluation scripts: the negative recordings that training draws
# from (their 'training' hash split; their 'validation' split is for tuning). Needs DATA and DEB.
# Held out of this list, for the test streams only: negative_speech/mycroft_precise_community and
# the Debian packages asterisk-core-sounds-en-wav and fillets-ng-data.
TRAIN_NEG="$DATA/negative_speech/picovoice_speech_to_intent/speech"
for p in asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
         asterisk-core-sounds-ru-wav asterisk-prompt-es-co asterisk-prompt-fr-armelle \
         asterisk-prompt-it-menardi-wav fillets-ng-data-cs fillets-ng-data-nl hedgewars-data klettres-data \
         asterisk-moh-opsound-wav; do
  TRAIN_NEG="$TRAIN_NEG,$DEB/$p"
done
